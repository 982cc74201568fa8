use super::{Iccid, Money, RecordId, Text, UtcMillis, Volume};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TrafficType {
    Data,
    Sms,
}

impl TrafficType {
    pub fn from_wire_id(id: i64) -> Option<Self> {
        match id {
            5 => Some(TrafficType::Data),
            6 => Some(TrafficType::Sms),
            _ => None,
        }
    }

    pub fn wire_id(self) -> i64 {
        match self {
            TrafficType::Data => 5,
            TrafficType::Sms => 6,
        }
    }

    /// Reads the lake's `traffic_type` column back.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "data" => Some(TrafficType::Data),
            "sms" => Some(TrafficType::Sms),
            _ => None,
        }
    }

    /// The value of the lake's `traffic_type` column.
    pub fn as_str(self) -> &'static str {
        match self {
            TrafficType::Data => "data",
            TrafficType::Sms => "sms",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Operator {
    pub name: Option<Text>,
    pub mnc: Option<Text>,
    pub mcc: Option<Text>,
    pub country_name: Option<Text>,
}

/// ISO 4217 code: three upper-case ASCII letters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Currency([u8; 3]);

impl Currency {
    pub fn parse(code: &str) -> Option<Self> {
        let b = code.as_bytes();
        (b.len() == 3 && b.iter().all(u8::is_ascii_uppercase)).then(|| Currency([b[0], b[1], b[2]]))
    }

    pub fn as_str(&self) -> &str {
        // SAFETY: `parse` stores only ASCII upper-case letters, which are valid UTF-8.
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }
}

/// rx and tx, with `total` = rx + tx guaranteed by construction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Volumes {
    rx: Volume,
    tx: Volume,
}

impl Volumes {
    pub const ZERO: Volumes = Volumes {
        rx: Volume::ZERO,
        tx: Volume::ZERO,
    };

    /// `None` if either part is negative.
    pub fn new(rx: Volume, tx: Volume) -> Option<Self> {
        (!rx.is_negative() && !tx.is_negative()).then_some(Volumes { rx, tx })
    }

    pub fn rx(&self) -> Volume {
        self.rx
    }

    pub fn tx(&self) -> Volume {
        self.tx
    }

    pub fn total(&self) -> Volume {
        self.rx + self.tx
    }
}

/// One validated usage record: the interval [start, end) of a SIM's traffic and its charge.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UsageRecord {
    pub id: RecordId,
    pub traffic_type: TrafficType,
    pub start: UtcMillis,
    pub end: UtcMillis,
    pub iccid: Iccid,
    pub imsi: Option<Text>,
    pub operator: Option<Operator>,
    pub volume: Volumes,
    pub cost: Money,
    pub currency: Currency,
}
