use std::fmt;

/// A SIM's ICCID: 18 to 22 decimal digits, kept inline so that it is `Copy` and hashes fast.
/// Ordered by length, then digits; hashed and compared as three machine words (every
/// usage record looks its SIM up by ICCID).
#[derive(Clone, Copy, PartialOrd, Ord)]
pub struct Iccid {
    len: u8,
    digits: [u8; Iccid::MAX_LEN],
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ICCID '{0}' is not 18 to 22 digits")]
pub struct IccidError(pub String);

impl Iccid {
    pub const MIN_LEN: usize = 18;
    pub const MAX_LEN: usize = 22;

    pub fn parse(text: &str) -> Result<Self, IccidError> {
        let bytes = text.as_bytes();
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&bytes.len())
            || !bytes.iter().all(u8::is_ascii_digit)
        {
            return Err(IccidError(text.to_owned()));
        }
        let mut digits = [0u8; Self::MAX_LEN];
        digits[..bytes.len()].copy_from_slice(bytes);
        Ok(Iccid {
            len: bytes.len() as u8,
            digits,
        })
    }

    /// The length and the digits as three words: equal ICCIDs, equal words.
    fn words(&self) -> [u64; 3] {
        let mut bytes = [0u8; 24];
        bytes[0] = self.len;
        bytes[1..=Self::MAX_LEN].copy_from_slice(&self.digits);
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
            u64::from_le_bytes(w)
        };
        [word(0), word(1), word(2)]
    }

    pub fn as_str(&self) -> &str {
        // SAFETY: `parse` stores only ASCII digits, which are valid UTF-8.
        unsafe { std::str::from_utf8_unchecked(&self.digits[..usize::from(self.len)]) }
    }
}

impl PartialEq for Iccid {
    fn eq(&self, other: &Self) -> bool {
        self.words() == other.words()
    }
}

impl Eq for Iccid {}

impl std::hash::Hash for Iccid {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for word in self.words() {
            state.write_u64(word);
        }
    }
}

impl fmt::Display for Iccid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Iccid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Iccid({})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn accepts_exactly_18_to_22_digits(s in "[0-9]{1,30}") {
            let parsed = Iccid::parse(&s);
            prop_assert_eq!(parsed.is_ok(), (18..=22).contains(&s.len()));
            if let Ok(iccid) = parsed {
                prop_assert_eq!(iccid.as_str(), s.as_str());
            }
        }

        #[test]
        fn equal_and_hashed_as_their_digits(a in "[0-9]{18,22}", b in "[0-9]{18,22}") {
            let hash = |i: &Iccid| std::hash::BuildHasher::hash_one(&ahash::RandomState::with_seeds(1, 2, 3, 4), i);
            let (x, y) = (Iccid::parse(&a).unwrap(), Iccid::parse(&b).unwrap());
            prop_assert_eq!(x == y, a == b);
            prop_assert_eq!(x == x, true);
            prop_assert_eq!(hash(&x) == hash(&Iccid::parse(&a).unwrap()), true);
            // Shorter ICCIDs sort first; equal lengths by their digits.
            prop_assert_eq!(x.cmp(&y), (a.len(), &a).cmp(&(b.len(), &b)));
        }

        #[test]
        fn rejects_any_non_digit(prefix in "[0-9]{9}", bad in "[^0-9]", suffix in "[0-9]{10}") {
            let text = format!("{prefix}{bad}{suffix}");
            prop_assert!(Iccid::parse(&text).is_err());
        }
    }
}
