//! A strict JSON reader for the fast path of decoding: no allocation, any key order,
//! whitespace and unknown fields, but it gives up (`None`) on anything unusual: string
//! escapes, control characters, invalid UTF-8, deep nesting, malformed syntax. The caller
//! then decodes the line with serde_json, which names the defect. So the fast path only has
//! to be right on what it accepts, and may refuse anything.

/// Unknown values nested deeper than this send the line to the serde path (which has its
/// own recursion limit), so a hostile line cannot overflow the stack here.
const MAX_DEPTH: u32 = 32;

pub(super) struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Scanner<'a> {
    /// `None` if the input is not UTF-8. Checking the whole line once is far cheaper than
    /// checking each string; every slice taken later starts and ends at an ASCII byte.
    pub fn new(input: &'a [u8]) -> Option<Self> {
        let text = std::str::from_utf8(input).ok()?;
        Some(Scanner {
            text,
            bytes: input,
            pos: 0,
        })
    }

    fn slice(&self, start: usize, end: usize) -> Option<&'a str> {
        self.text.get(start..end)
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    pub fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// How far into the input the scanner is.
    pub fn offset(&self) -> usize {
        self.pos
    }

    /// Consumes `literal` if the input continues with exactly those bytes.
    pub fn exactly(&mut self, literal: &[u8]) -> Option<()> {
        let end = self.pos + literal.len();
        same_bytes(self.bytes.get(self.pos..end)?, literal).then(|| self.pos = end)
    }

    /// Skips whitespace, then consumes `byte` if it comes next.
    fn eat(&mut self, byte: u8) -> Option<()> {
        self.skip_whitespace();
        (self.peek()? == byte).then(|| self.pos += 1)
    }

    fn eat_literal(&mut self, literal: &[u8]) -> Option<()> {
        self.skip_whitespace();
        self.exactly(literal)
    }

    /// True, and consumed, if the next value is `null`.
    pub fn null(&mut self) -> bool {
        self.eat_literal(b"null").is_some()
    }

    /// Only whitespace is left.
    pub fn at_end(&mut self) -> bool {
        self.skip_whitespace();
        self.pos == self.bytes.len()
    }

    /// A string without escapes, borrowed from the input.
    pub fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let rest = self.bytes.get(self.pos..)?;
        let len = first_special(rest)?;
        if rest[len] != b'"' {
            return None;
        }
        let text = self.slice(self.pos, self.pos + len)?;
        self.pos += len + 1;
        Some(text)
    }

    /// The exact text of a JSON number (RFC 8259 grammar).
    pub fn number(&mut self) -> Option<&'a str> {
        self.skip_whitespace();
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek()? {
            b'0' => self.pos += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            self.at_least_one_digit()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            self.at_least_one_digit()?;
        }
        self.slice(start, self.pos)
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
    }

    fn at_least_one_digit(&mut self) -> Option<()> {
        let start = self.pos;
        self.digits();
        (self.pos > start).then_some(())
    }

    /// An integer that fits in i64, written without fraction or exponent.
    pub fn integer(&mut self) -> Option<i64> {
        let text = self.number()?;
        // serde_json reads `-0` as a float, so an i64 field refuses it.
        if text.contains(['.', 'e', 'E']) || text == "-0" {
            return None;
        }
        text.parse().ok()
    }

    /// Reads an object, calling `field` with each key; `field` must consume the value.
    pub fn object(
        &mut self,
        mut field: impl FnMut(&mut Self, &'a str) -> Option<()>,
    ) -> Option<()> {
        self.eat(b'{')?;
        self.skip_whitespace();
        if self.peek()? == b'}' {
            self.pos += 1;
            return Some(());
        }
        loop {
            let key = self.string()?;
            self.eat(b':')?;
            field(self, key)?;
            self.skip_whitespace();
            let separator = self.peek()?;
            self.pos += 1;
            match separator {
                b',' => continue,
                b'}' => return Some(()),
                _ => return None,
            }
        }
    }

    /// Skips one value of any type.
    pub fn skip_value(&mut self) -> Option<()> {
        self.skip_nested(0)
    }

    fn skip_nested(&mut self, depth: u32) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.skip_whitespace();
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' => self.object(|s, _| s.skip_nested(depth + 1)),
            b'[' => self.skip_array(depth),
            b't' => self.eat_literal(b"true"),
            b'f' => self.eat_literal(b"false"),
            b'n' => self.eat_literal(b"null"),
            _ => self.number().map(drop),
        }
    }

    fn skip_array(&mut self, depth: u32) -> Option<()> {
        self.eat(b'[')?;
        self.skip_whitespace();
        if self.peek()? == b']' {
            self.pos += 1;
            return Some(());
        }
        loop {
            self.skip_nested(depth + 1)?;
            self.skip_whitespace();
            let separator = self.peek()?;
            self.pos += 1;
            match separator {
                b',' => continue,
                b']' => return Some(()),
                _ => return None,
            }
        }
    }
}

/// Remembers which of up to 32 known keys an object had, so that a repeated key (which
/// serde rejects) sends the line to the serde path.
#[derive(Default)]
pub(super) struct Seen(u32);

impl Seen {
    /// Marks key number `bit`; `None` if it was already there.
    pub fn first(&mut self, bit: u32) -> Option<()> {
        let mask = 1 << bit;
        if self.0 & mask != 0 {
            return None;
        }
        self.0 |= mask;
        Some(())
    }

    pub fn has(&self, bit: u32) -> bool {
        self.0 & (1 << bit) != 0
    }
}

/// `a == b` for two slices of one length, eight bytes at a time and inline. The literal runs
/// a shape compares are short, and calling `memcmp` for each cost more than comparing.
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n < 8 {
        return a.iter().zip(b).all(|(x, y)| x == y);
    }
    let word = |s: &[u8], at: usize| {
        let mut word = [0; 8];
        word.copy_from_slice(&s[at..at + 8]);
        u64::from_ne_bytes(word)
    };
    // Whole words from the start, then the last eight bytes (which may overlap the last).
    (0..n - 8).step_by(8).all(|at| word(a, at) == word(b, at)) && word(a, n - 8) == word(b, n - 8)
}

/// Where the first byte that ends a plain string is: a quote, a backslash or a control
/// character. Eight bytes at a time (strings are most of a record's bytes, and this was the
/// decoder's busiest loop, at a byte at a time).
fn first_special(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    // The high bit of each byte below `n` (n <= 0x80). Only the lowest marked byte is sure
    // to be exact (a borrow can mark bytes above it), and only that one is used.
    let below = |word: u64, n: u8| word.wrapping_sub(ONES * u64::from(n)) & !word & HIGHS;
    let mut chunks = bytes.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        let marked = below(word ^ (ONES * u64::from(b'"')), 1)
            | below(word ^ (ONES * u64::from(b'\\')), 1)
            | below(word, 0x20);
        if marked != 0 {
            return Some(offset + marked.trailing_zeros() as usize / 8);
        }
        offset += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .map(|i| offset + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skips(json: &str) -> bool {
        let Some(mut s) = Scanner::new(json.as_bytes()) else {
            return false;
        };
        s.skip_value().is_some() && s.at_end()
    }

    proptest::proptest! {
        #[test]
        fn the_end_of_a_plain_string_is_the_first_quote_backslash_or_control(
            bytes in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::sample::select(b"\"\\\x00\x1f\x20\x7f\x80\xa2\xffa".to_vec()),
                    proptest::prelude::any::<u8>(),
                ],
                0..40,
            ),
        ) {
            let expected = bytes.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20);
            proptest::prop_assert_eq!(first_special(&bytes), expected);
        }
    }

    proptest::proptest! {
        #[test]
        fn same_bytes_is_slice_equality(
            a in proptest::collection::vec(0u8..3, 0..40),
            flip in proptest::option::of(proptest::prelude::any::<proptest::sample::Index>()),
        ) {
            let mut b = a.clone();
            if let (Some(at), false) = (flip, b.is_empty()) {
                b[at.index(a.len())] ^= 1;
            }
            proptest::prop_assert_eq!(same_bytes(&a, &b), a == b);
            proptest::prop_assert!(!same_bytes(&a, &b[..b.len().saturating_sub(1)]) || a.is_empty());
        }
    }

    #[test]
    fn accepts_what_json_accepts() {
        for ok in [
            r#"{"a": [1, -2.5e+3, true, false, null, {"b": {}}, []], "c": "x"}"#,
            "0",
            "-0.0",
            "1E9",
            " \t\r\n\"\" ",
        ] {
            assert!(skips(ok), "{ok}");
        }
    }

    #[test]
    fn refuses_bad_syntax_and_what_it_leaves_to_serde() {
        for refused in [
            "01",
            "1.",
            "-",
            ".5",
            "1e",
            "{\"a\" 1}",
            "{\"a\": 1,}",
            "[1 2]",
            "tru",
            "\"a\\nb\"",
            "\"tab\there\"",
            "{\"a\": 1} x",
            &"[".repeat(100),
        ] {
            assert!(!skips(refused), "{refused}");
        }
    }

    #[test]
    fn integers_are_plain_and_in_range() {
        let int = |t: &str| Scanner::new(t.as_bytes())?.integer();
        assert_eq!(int("7000000003"), Some(7_000_000_003));
        assert_eq!(int("-5"), Some(-5));
        assert_eq!(int("5.0"), None);
        assert_eq!(int("5e0"), None);
        assert_eq!(int("-0"), None);
        assert_eq!(int("9223372036854775808"), None);
    }

    #[test]
    fn repeated_keys_are_noticed() {
        let mut seen = Seen::default();
        assert!(seen.first(3).is_some());
        assert!(seen.has(3));
        assert!(seen.first(3).is_none());
    }
}
