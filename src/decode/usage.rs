use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::fast;
use super::fields::{OperatorFields, UsageFields};
use super::shape::Shape;
use super::{check_is_object, number_text, rejection_from_serde, Reason, Rejection};
use crate::domain::{
    AmountError, Currency, Fixed, Iccid, Money, Operator, RecordId, Text, TrafficType, UsageRecord,
    UtcMillis, Volume, Volumes,
};

/// The wire shape, borrowed from the input line. Unknown fields are ignored.
#[derive(Deserialize)]
struct WireUsage<'a> {
    id: i64,
    traffic_type: WireTrafficType,
    #[serde(borrow)]
    start_timestamp: Cow<'a, str>,
    #[serde(borrow)]
    end_timestamp: Cow<'a, str>,
    #[serde(borrow)]
    sim: WireSim<'a>,
    #[serde(borrow, default)]
    imsi: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    operator: Option<WireOperator<'a>>,
    #[serde(borrow)]
    volume: WireVolume<'a>,
    #[serde(borrow)]
    cost: &'a RawValue,
    #[serde(borrow)]
    currency: WireCurrency<'a>,
}

#[derive(Deserialize)]
struct WireTrafficType {
    id: i64,
}

#[derive(Deserialize)]
struct WireSim<'a> {
    #[serde(borrow)]
    iccid: Cow<'a, str>,
}

#[derive(Deserialize)]
struct WireOperator<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    mnc: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    country: Option<WireCountry<'a>>,
}

#[derive(Deserialize)]
struct WireCountry<'a> {
    #[serde(borrow, default)]
    mcc: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct WireVolume<'a> {
    #[serde(borrow)]
    rx: &'a RawValue,
    #[serde(borrow)]
    tx: &'a RawValue,
    #[serde(borrow)]
    total: &'a RawValue,
}

#[derive(Deserialize)]
struct WireCurrency<'a> {
    #[serde(borrow)]
    code: Cow<'a, str>,
}

impl<'a> From<WireUsage<'a>> for UsageFields<'a> {
    fn from(wire: WireUsage<'a>) -> Self {
        UsageFields {
            id: wire.id,
            traffic_type_id: wire.traffic_type.id,
            start_timestamp: wire.start_timestamp,
            end_timestamp: wire.end_timestamp,
            iccid: wire.sim.iccid,
            imsi: wire.imsi,
            operator: wire.operator.map(|op| {
                let (mcc, country_name) = op.country.map(|c| (c.mcc, c.name)).unwrap_or_default();
                OperatorFields {
                    name: op.name,
                    mnc: op.mnc,
                    mcc,
                    country_name,
                }
            }),
            rx: wire.volume.rx.get(),
            tx: wire.volume.tx.get(),
            total: wire.volume.total.get(),
            cost: wire.cost.get(),
            currency: wire.currency.code,
        }
    }
}

/// Decodes and validates one usage record (one NDJSON line or one Kafka message value).
pub fn decode_usage(bytes: &[u8]) -> Result<UsageRecord, Rejection> {
    match fast::scan_usage(bytes) {
        Some(fields) => validate(fields),
        None => decode_with_serde(bytes),
    }
}

/// Decodes a run of usage lines, such as one chunk of an input. A producer lays out every
/// line alike, so the decoder learns that [`Shape`] from a line the fast scanner read and
/// reads the lines after it by their shape; a line of another layout goes to the scanner
/// (and serde). When lines of another layout become common, it learns that one instead.
#[derive(Default)]
pub struct UsageDecoder {
    shape: Option<Shape>,
    /// Since the shape was learnt: lines it read, and lines the scanner read instead.
    hits: usize,
    misses: usize,
}

impl UsageDecoder {
    /// As [`decode_usage`], with the same answer for every line.
    pub fn decode(&mut self, bytes: &[u8]) -> Result<UsageRecord, Rejection> {
        if let Some(fields) = self.shape.as_ref().and_then(|shape| shape.read(bytes)) {
            self.hits += 1;
            return validate(fields);
        }
        let Some(fields) = fast::scan_usage(bytes) else {
            return decode_with_serde(bytes);
        };
        self.misses += 1;
        // Another layout once its lines are a fifth of those since the shape was learnt.
        if self.shape.is_none() || self.misses * 4 > self.hits {
            self.shape = Shape::learn(bytes);
            (self.hits, self.misses) = (0, 0);
        }
        validate(fields)
    }
}

/// The reference decoder: slower, but it names the defect of any line it refuses.
fn decode_with_serde(bytes: &[u8]) -> Result<UsageRecord, Rejection> {
    let wire: WireUsage = match serde_json::from_slice(bytes) {
        Ok(wire) => wire,
        Err(e) => {
            check_is_object(bytes)?;
            return Err(rejection_from_serde(&e));
        }
    };
    validate(wire.into())
}

fn validate(wire: UsageFields) -> Result<UsageRecord, Rejection> {
    let iccid = Iccid::parse(&wire.iccid)
        .map_err(|e| Rejection::new(Reason::InvalidIccid, format!("sim.iccid: {e}")))?;
    let traffic_type = TrafficType::from_wire_id(wire.traffic_type_id).ok_or_else(|| {
        Rejection::new(
            Reason::UnknownTrafficType,
            format!(
                "traffic_type.id {} is neither 5 (Data) nor 6 (SMS)",
                wire.traffic_type_id
            ),
        )
    })?;
    let start = timestamp(&wire.start_timestamp, "start_timestamp")?;
    let end = timestamp(&wire.end_timestamp, "end_timestamp")?;
    if end < start {
        return Err(Rejection::new(
            Reason::EndBeforeStart,
            format!("end_timestamp {end} is before start_timestamp {start}"),
        ));
    }
    let rx: Volume = amount(wire.rx, "volume.rx")?;
    let tx: Volume = amount(wire.tx, "volume.tx")?;
    let total: Volume = amount(wire.total, "volume.total")?;
    let cost: Money = amount(wire.cost, "cost")?;
    let volume = Volumes::new(rx, tx).filter(|v| v.total() == total);
    let Some(volume) = volume else {
        return Err(Rejection::new(
            Reason::TotalMismatch,
            format!("volume.total {total} is not rx {rx} + tx {tx}"),
        ));
    };
    let currency = Currency::parse(&wire.currency).ok_or_else(|| {
        Rejection::new(
            Reason::InvalidCurrency,
            format!("currency.code '{}' is not an ISO 4217 code", wire.currency),
        )
    })?;
    if wire.id < 0 {
        return Err(Rejection::new(
            Reason::InvalidField,
            format!("id {} is negative", wire.id),
        ));
    }
    let text = |value: Option<Cow<str>>| value.map(|v| Text::new(&v));
    Ok(UsageRecord {
        id: RecordId(wire.id),
        traffic_type,
        start,
        end,
        iccid,
        imsi: text(wire.imsi),
        operator: wire.operator.map(|op| Operator {
            name: text(op.name),
            mnc: text(op.mnc),
            mcc: text(op.mcc),
            country_name: text(op.country_name),
        }),
        volume,
        cost,
        currency,
    })
}

fn timestamp(text: &str, field: &str) -> Result<UtcMillis, Rejection> {
    UtcMillis::parse_rfc3339(text)
        .map_err(|e| Rejection::new(Reason::InvalidTimestamp, format!("{field}: {e}")))
}

fn amount<const S: u32>(raw: &str, field: &str) -> Result<Fixed<S>, Rejection> {
    let text = number_text(raw, field)?;
    let value = Fixed::<S>::parse(text).map_err(|e| {
        let reason = match e {
            AmountError::TooPrecise { .. } => Reason::TooPrecise,
            AmountError::NotANumber(_) | AmountError::OutOfRange(_) => Reason::InvalidField,
        };
        Rejection::new(reason, format!("{field}: {e}"))
    })?;
    if value.is_negative() {
        return Err(Rejection::new(
            Reason::NegativeAmount,
            format!("{field} is negative: {text}"),
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"id": 7000000003, "traffic_type": {"id": 5, "description": "Data"}, "start_timestamp": "2026-11-04T03:27:07.716Z", "end_timestamp": "2026-11-04T03:37:07.716Z", "sim": {"iccid": "8988303000010001867"}, "imsi": "295050900000000", "operator": {"name": "Vodafone", "mnc": "01", "country": {"mcc": "262", "name": "Germany"}}, "volume": {"rx": 22.816511, "tx": 0.949929, "total": 23.766440}, "cost": 0.0404039320, "currency": {"code": "EUR"}, "extra": [1,2]}"#;

    fn reason_of(line: &str) -> Reason {
        decode_usage(line.as_bytes()).unwrap_err().reason
    }

    #[test]
    fn decodes_the_documented_example_exactly() {
        let r = decode_usage(GOOD.as_bytes()).unwrap();
        assert_eq!(r.id, RecordId(7000000003));
        assert_eq!(r.volume.total().to_string(), "23.766440");
        assert_eq!(r.cost.to_string(), "0.0404039320");
        assert_eq!(r.operator.unwrap().country_name.as_deref(), Some("Germany"));
    }

    #[test]
    fn each_defect_gets_its_own_reason() {
        assert_eq!(reason_of("{not json"), Reason::NotJson);
        assert_eq!(reason_of("[]"), Reason::NotAnObject);
        assert_eq!(reason_of(r#"{"id": "x"}"#), Reason::InvalidField);
        assert_eq!(reason_of(r#"{"id": 1}"#), Reason::MissingField);
        let swap = |from: &str, to: &str| GOOD.replacen(from, to, 1);
        assert_eq!(
            reason_of(&swap(r#""id": 5"#, r#""id": 7"#)),
            Reason::UnknownTrafficType
        );
        assert_eq!(
            reason_of(&swap("03:37:07", "03:17:07")),
            Reason::EndBeforeStart
        );
        assert_eq!(
            reason_of(&swap("22.816511", "-22.816511")),
            Reason::NegativeAmount
        );
        assert_eq!(
            reason_of(&swap("23.766440", "23.766441")),
            Reason::TotalMismatch
        );
        assert_eq!(
            reason_of(&swap("8988303000010001867", "89883")),
            Reason::InvalidIccid
        );
        assert_eq!(
            reason_of(&swap("2026-11-04T03:27:07.716Z", "yesterday")),
            Reason::InvalidTimestamp
        );
        assert_eq!(
            reason_of(&swap("0.0404039320", "\"0.04\"")),
            Reason::InvalidField
        );
        assert_eq!(
            reason_of(&swap("0.0404039320", "0.04040393201")),
            Reason::TooPrecise
        );
    }

    #[test]
    fn rejection_message_names_the_field() {
        let line = GOOD.replacen("22.816511", "-22.816511", 1);
        let rejection = decode_usage(line.as_bytes()).unwrap_err();
        assert!(
            rejection.detail.contains("volume.rx"),
            "{}",
            rejection.detail
        );
    }
}

#[cfg(test)]
mod equivalence;
