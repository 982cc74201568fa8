//! The fast path for usage records: reads the documented shape straight from the bytes,
//! without allocating. Anything it is not sure of (a missing or repeated field, a wrong
//! type, an escape) returns `None`, and the line goes to serde_json, which either decodes it
//! too or says exactly what is wrong. A property test holds the two paths to the same answer.

use std::borrow::Cow;

use super::scan::{Scanner, Seen};
use super::usage::{OperatorFields, UsageFields};

pub(super) fn scan_usage(bytes: &[u8]) -> Option<UsageFields<'_>> {
    let mut s = Scanner::new(bytes)?;
    let mut seen = Seen::default();
    let (mut id, mut traffic_type_id) = (0, 0);
    let (mut start, mut end, mut iccid, mut currency) = ("", "", "", "");
    let (mut rx, mut tx, mut total, mut cost) = ("", "", "", "");
    let mut imsi = None;
    let mut operator = None;
    s.object(|s, key| match key {
        "id" => {
            seen.first(0)?;
            id = s.integer()?;
            Some(())
        }
        "traffic_type" => {
            seen.first(1)?;
            traffic_type_id = only_field(s, "id", Scanner::integer)?;
            Some(())
        }
        "start_timestamp" => {
            seen.first(2)?;
            start = s.string()?;
            Some(())
        }
        "end_timestamp" => {
            seen.first(3)?;
            end = s.string()?;
            Some(())
        }
        "sim" => {
            seen.first(4)?;
            iccid = only_field(s, "iccid", Scanner::string)?;
            Some(())
        }
        "imsi" => {
            seen.first(5)?;
            imsi = optional_string(s)?;
            Some(())
        }
        "operator" => {
            seen.first(6)?;
            operator = optional_operator(s)?;
            Some(())
        }
        "volume" => {
            seen.first(7)?;
            (rx, tx, total) = volume(s)?;
            Some(())
        }
        "cost" => {
            seen.first(8)?;
            cost = s.number()?;
            Some(())
        }
        "currency" => {
            seen.first(9)?;
            currency = only_field(s, "code", Scanner::string)?;
            Some(())
        }
        _ => s.skip_value(),
    })?;
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
