//! The fast path for usage records: reads the documented shape straight from the bytes,
//! without allocating. Anything it is not sure of (a missing or repeated field, a wrong
//! type, an escape) returns `None`, and the line goes to serde_json, which either decodes it
//! too or says exactly what is wrong. A property test holds the two paths to the same answer.

use std::borrow::Cow;

use super::fields::{OperatorFields, UsageFields};
use super::scan::{Scanner, Seen};

pub(super) fn scan_usage(bytes: &[u8]) -> Option<UsageFields<'_>> {
    let mut s = Scanner::new(bytes)?;
    let mut seen = Seen::default();
    let (mut id, mut traffic_type_id) = (0, 0);
    let (mut start, mut end, mut iccid, mut currency) = ("", "", "", "");
    let mut volumes = ("", "", "");
    let mut cost = "";
    let mut imsi = None;
    let mut operator = None;
    s.object(|s, key| {
        let seen = &mut seen;
        match key {
            "id" => set(seen, 0, &mut id, s.integer()),
            "traffic_type" => set(
                seen,
                1,
                &mut traffic_type_id,
                only_field(s, "id", Scanner::integer),
            ),
            "start_timestamp" => set(seen, 2, &mut start, s.string()),
            "end_timestamp" => set(seen, 3, &mut end, s.string()),
            "sim" => set(seen, 4, &mut iccid, only_field(s, "iccid", Scanner::string)),
            "imsi" => set(seen, 5, &mut imsi, optional_string(s)),
            "operator" => set(seen, 6, &mut operator, optional_operator(s)),
            "volume" => set(seen, 7, &mut volumes, volume(s)),
            "cost" => set(seen, 8, &mut cost, s.number()),
            "currency" => set(
                seen,
                9,
                &mut currency,
                only_field(s, "code", Scanner::string),
            ),
            _ => s.skip_value(),
        }
    })?;
    let (rx, tx, total) = volumes;
    let required = [0, 1, 2, 3, 4, 7, 8, 9];
    if !s.at_end() || !required.iter().all(|&bit| seen.has(bit)) {
        return None;
    }
    Some(UsageFields {
        id,
        traffic_type_id,
        start_timestamp: Cow::Borrowed(start),
        end_timestamp: Cow::Borrowed(end),
        iccid: Cow::Borrowed(iccid),
        imsi: imsi.map(Cow::Borrowed),
        operator,
        rx,
        tx,
        total,
        cost,
        currency: Cow::Borrowed(currency),
    })
}

/// Stores the value of known key number `bit`; `None` (serde decides) if the key came
/// before or the value is not what the fast path takes.
fn set<T>(seen: &mut Seen, bit: u32, slot: &mut T, value: Option<T>) -> Option<()> {
    seen.first(bit)?;
    *slot = value?;
    Some(())
}

/// An object with one required field `name` (others ignored), as in `{"code": "EUR"}`.
fn only_field<'a, T>(
    s: &mut Scanner<'a>,
    name: &str,
    read: impl Fn(&mut Scanner<'a>) -> Option<T>,
) -> Option<T> {
    let mut value = None;
    s.object(|s, key| {
        if key != name {
            return s.skip_value();
        }
        if value.is_some() {
            return None;
        }
        value = Some(read(s)?);
        Some(())
    })?;
    value
}

/// `Some(None)` for null: the outer `None` means "leave this line to serde".
fn optional_string<'a>(s: &mut Scanner<'a>) -> Option<Option<&'a str>> {
    if s.null() {
        return Some(None);
    }
    s.string().map(Some)
}

fn optional_operator<'a>(s: &mut Scanner<'a>) -> Option<Option<OperatorFields<'a>>> {
    if s.null() {
        return Some(None);
    }
    let mut seen = Seen::default();
    let mut operator = OperatorFields::default();
    s.object(|s, key| {
        let (bit, slot) = match key {
            "name" => (0, &mut operator.name),
            "mnc" => (1, &mut operator.mnc),
            "country" => {
                seen.first(2)?;
                if let Some((mcc, name)) = optional_country(s)? {
                    operator.mcc = mcc.map(Cow::Borrowed);
                    operator.country_name = name.map(Cow::Borrowed);
                }
                return Some(());
            }
            _ => return s.skip_value(),
        };
        seen.first(bit)?;
        *slot = optional_string(s)?.map(Cow::Borrowed);
        Some(())
    })?;
    Some(Some(operator))
}

type Country<'a> = (Option<&'a str>, Option<&'a str>);

fn optional_country<'a>(s: &mut Scanner<'a>) -> Option<Option<Country<'a>>> {
    if s.null() {
        return Some(None);
    }
    let mut seen = Seen::default();
    let (mut mcc, mut name) = (None, None);
    s.object(|s, key| {
        let (bit, slot) = match key {
            "mcc" => (0, &mut mcc),
            "name" => (1, &mut name),
            _ => return s.skip_value(),
        };
        seen.first(bit)?;
        *slot = optional_string(s)?;
        Some(())
    })?;
    Some(Some((mcc, name)))
}

fn volume<'a>(s: &mut Scanner<'a>) -> Option<(&'a str, &'a str, &'a str)> {
    let mut seen = Seen::default();
    let (mut rx, mut tx, mut total) = ("", "", "");
    s.object(|s, key| {
        let (bit, slot) = match key {
            "rx" => (0, &mut rx),
            "tx" => (1, &mut tx),
            "total" => (2, &mut total),
            _ => return s.skip_value(),
        };
        seen.first(bit)?;
        *slot = s.number()?;
        Some(())
    })?;
    (seen.has(0) && seen.has(1) && seen.has(2)).then_some((rx, tx, total))
}
