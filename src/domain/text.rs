use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

/// An immutable string that keeps short values inline. The free-text fields of a usage
/// record (IMSI, operator, MCC/MNC, country) are nearly always short; keeping them inline
/// saves five heap allocations per record on the decode path.
#[derive(Clone)]
pub struct Text(Repr);

#[derive(Clone)]
enum Repr {
    Inline { len: u8, bytes: [u8; Text::INLINE] },
    Heap(Box<str>),
}

impl Text {
    /// The longest value kept inline; `Text` is then as big as a `String`.
    pub const INLINE: usize = 22;

    pub fn new(value: &str) -> Self {
        let source = value.as_bytes();
        if source.len() > Self::INLINE {
            return Text(Repr::Heap(value.into()));
        }
        let mut bytes = [0u8; Self::INLINE];
        bytes[..source.len()].copy_from_slice(source);
        Text(Repr::Inline {
            len: source.len() as u8,
            bytes,
        })
    }

    pub fn as_str(&self) -> &str {
        match &self.0 {
            // SAFETY: `new` copies the inline bytes whole from a `&str` and nothing else
            // writes them, so they are valid UTF-8. Checking again on every read cost a
            // measurable share of ingest time (docs/performance.md).
            Repr::Inline { len, bytes } => unsafe {
                std::str::from_utf8_unchecked(&bytes[..usize::from(*len)])
            },
            Repr::Heap(text) => text,
        }
    }

    pub fn is_inline(&self) -> bool {
        matches!(self.0, Repr::Inline { .. })
    }
}

impl Default for Text {
    fn default() -> Self {
        Text::new("")
    }
}

impl Deref for Text {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for Text {
    fn from(value: &str) -> Self {
        Text::new(value)
    }
}

impl From<String> for Text {
    fn from(value: String) -> Self {
        Text::new(&value)
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Text {}

impl Hash for Text {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn is_no_bigger_than_a_string() {
        assert!(std::mem::size_of::<Text>() <= std::mem::size_of::<String>());
    }

    #[test]
    fn short_values_stay_inline_and_long_ones_go_to_the_heap() {
        assert!(Text::new("Vodafone").is_inline());
        assert!(Text::new(&"x".repeat(Text::INLINE)).is_inline());
        assert!(!Text::new(&"x".repeat(Text::INLINE + 1)).is_inline());
    }

    proptest! {
        #[test]
        fn keeps_any_string_exactly(s in "\\PC{0,40}") {
            let text = Text::new(&s);
            prop_assert_eq!(text.as_str(), s.as_str());
            prop_assert_eq!(text.clone(), Text::from(s.clone()));
        }

        #[test]
        fn equality_is_string_equality(a in "[a-c]{0,24}", b in "[a-c]{0,24}") {
            prop_assert_eq!(Text::new(&a) == Text::new(&b), a == b);
        }
    }
}
