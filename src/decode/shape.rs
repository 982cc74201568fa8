//! The layout of a producer's usage lines, learnt from one of them. A producer writes every
//! record with the same keys in the same order and the same spacing; only the values
//! differ. A [`Shape`] is that layout: the literal bytes between the values, and what each
//! value is. A line with exactly those bytes between its values has the same keys in the
//! same places as the learnt line, so the fast scanner would read it the same way; reading
//! it from the shape compares each run of literal bytes at once instead of reading,
//! checking and dispatching every key. Any difference returns `None`, and the line goes to
//! the scanner. A property test holds the shape to the scanner's answer.

use std::borrow::Cow;
use std::ops::Range;

use super::fields::{OperatorFields, UsageFields};
use super::scan::Scanner;

/// Where a value read from a line goes.
#[derive(Clone, Copy)]
enum Slot {
    Start,
    End,
    Iccid,
    Imsi,
    OperatorName,
    Mnc,
    Mcc,
    CountryName,
    Rx,
    Tx,
    Total,
    Cost,
    Currency,
}

const SLOTS: usize = Slot::Currency as usize + 1;

/// What a value is, and so how it is read.
#[derive(Clone, Copy)]
enum Value {
    Id,
    TrafficType,
    /// A string (a `null` in the learnt line is part of the literal bytes instead).
    Text(Slot),
    Number(Slot),
    /// A field the fast path does not read: any JSON value.
    Other,
}

/// The fields the fast scanner reads, by key, as a tree.
enum Field {
    Value(Value),
    Object(&'static [(&'static str, Field)]),
    /// The operator object: whether it is there is itself a field.
    Operator(&'static [(&'static str, Field)]),
}

const USAGE: &[(&str, Field)] = &[
    ("id", Field::Value(Value::Id)),
    (
        "traffic_type",
        Field::Object(&[("id", Field::Value(Value::TrafficType))]),
    ),
    ("start_timestamp", Field::Value(Value::Text(Slot::Start))),
    ("end_timestamp", Field::Value(Value::Text(Slot::End))),
    (
        "sim",
        Field::Object(&[("iccid", Field::Value(Value::Text(Slot::Iccid)))]),
    ),
    ("imsi", Field::Value(Value::Text(Slot::Imsi))),
    ("operator", Field::Operator(OPERATOR)),
    ("volume", Field::Object(VOLUME)),
    ("cost", Field::Value(Value::Number(Slot::Cost))),
    (
        "currency",
        Field::Object(&[("code", Field::Value(Value::Text(Slot::Currency)))]),
    ),
];

const OPERATOR: &[(&str, Field)] = &[
    ("name", Field::Value(Value::Text(Slot::OperatorName))),
    ("mnc", Field::Value(Value::Text(Slot::Mnc))),
    (
        "country",
        Field::Object(&[
            ("mcc", Field::Value(Value::Text(Slot::Mcc))),
            ("name", Field::Value(Value::Text(Slot::CountryName))),
        ]),
    ),
];

const VOLUME: &[(&str, Field)] = &[
    ("rx", Field::Value(Value::Number(Slot::Rx))),
    ("tx", Field::Value(Value::Number(Slot::Tx))),
    ("total", Field::Value(Value::Number(Slot::Total))),
];

pub(super) struct Shape {
    /// The learnt line; the literal runs are ranges of it.
    line: Box<[u8]>,
    /// Each value, after the literal bytes that come before it.
    values: Box<[(Range<usize>, Value)]>,
    /// The bytes after the last value, to the closing brace.
    tail: Range<usize>,
    /// Whether `operator` was an object (rather than `null` or missing).
    operator: bool,
}

impl Shape {
    /// The layout of `line`, which the fast scanner accepted; `None` if it has none that
    /// could be used (it should not happen for such a line).
    pub fn learn(line: &[u8]) -> Option<Shape> {
        let mut s = Scanner::new(line)?;
        let mut learner = Learner {
            values: Vec::with_capacity(24),
            literal_from: 0,
            operator: false,
        };
        learner.object(&mut s, USAGE)?;
        let tail = learner.literal_from..s.offset();
        s.at_end().then(|| Shape {
            line: line.into(),
            values: learner.values.into(),
            tail,
            operator: learner.operator,
        })
    }

    /// The fields of `line` if it has this layout.
    pub fn read<'a>(&self, line: &'a [u8]) -> Option<UsageFields<'a>> {
        let mut s = Scanner::new(line)?;
        let (mut id, mut traffic_type_id) = (None, None);
        let mut texts: [Option<&'a str>; SLOTS] = [None; SLOTS];
        for (literal, value) in &*self.values {
            s.exactly(&self.line[literal.clone()])?;
            match *value {
                Value::Id => id = Some(s.integer()?),
                Value::TrafficType => traffic_type_id = Some(s.integer()?),
                Value::Text(slot) => texts[slot as usize] = Some(s.string()?),
                Value::Number(slot) => texts[slot as usize] = Some(s.number()?),
                Value::Other => s.skip_value()?,
            }
        }
        s.exactly(&self.line[self.tail.clone()])?;
        if !s.at_end() {
            return None;
        }
        let text = |slot: Slot| texts[slot as usize].map(Cow::Borrowed);
        Some(UsageFields {
            id: id?,
            traffic_type_id: traffic_type_id?,
            start_timestamp: text(Slot::Start)?,
            end_timestamp: text(Slot::End)?,
            iccid: text(Slot::Iccid)?,
            imsi: text(Slot::Imsi),
            operator: self.operator.then(|| OperatorFields {
                name: text(Slot::OperatorName),
                mnc: text(Slot::Mnc),
                mcc: text(Slot::Mcc),
                country_name: text(Slot::CountryName),
            }),
            rx: texts[Slot::Rx as usize]?,
            tx: texts[Slot::Tx as usize]?,
            total: texts[Slot::Total as usize]?,
            cost: texts[Slot::Cost as usize]?,
            currency: text(Slot::Currency)?,
        })
    }
}

/// Walks a line as the fast scanner does, noting where each value starts and ends.
struct Learner {
    values: Vec<(Range<usize>, Value)>,
    /// Where the literal run before the next value starts.
    literal_from: usize,
    operator: bool,
}

impl Learner {
    fn object(&mut self, s: &mut Scanner, fields: &'static [(&'static str, Field)]) -> Option<()> {
        s.object(
            |s, key| match fields.iter().find(|(name, _)| *name == key).map(|f| &f.1) {
                None => self.value(s, Value::Other),
                Some(Field::Value(value)) => self.value(s, *value),
                Some(Field::Object(inner)) => self.nullable_object(s, inner).map(drop),
                Some(Field::Operator(inner)) => {
                    self.operator = self.nullable_object(s, inner)?;
                    Some(())
                }
            },
        )
    }

    /// `Some(true)` if it read an object, `Some(false)` if it read `null`.
    fn nullable_object(
        &mut self,
        s: &mut Scanner,
        fields: &'static [(&'static str, Field)],
    ) -> Option<bool> {
        if s.null() {
            return Some(false);
        }
        self.object(s, fields).map(|()| true)
    }

    fn value(&mut self, s: &mut Scanner, value: Value) -> Option<()> {
        if matches!(value, Value::Text(_)) && s.null() {
            return Some(());
        }
        s.skip_whitespace();
        let start = s.offset();
        match value {
            Value::Id | Value::TrafficType => s.integer().map(drop)?,
            Value::Text(_) => s.string().map(drop)?,
            Value::Number(_) => s.number().map(drop)?,
            Value::Other => s.skip_value()?,
        }
        self.values.push((self.literal_from..start, value));
        self.literal_from = s.offset();
        Some(())
    }
}
