//! The fields of a usage record as text, before validation: what both decoding paths (the
//! fast scanner, a learnt shape and serde) produce, so that they share every validation rule.

use std::borrow::Cow;

/// The fields of a usage record as text, borrowed from the input, before validation. Every
/// decoding path produces this, so they share every validation rule.
#[derive(Debug, PartialEq)]
pub(super) struct UsageFields<'a> {
    pub(super) id: i64,
    pub(super) traffic_type_id: i64,
    pub(super) start_timestamp: Cow<'a, str>,
    pub(super) end_timestamp: Cow<'a, str>,
    pub(super) iccid: Cow<'a, str>,
    pub(super) imsi: Option<Cow<'a, str>>,
    pub(super) operator: Option<OperatorFields<'a>>,
    pub(super) rx: &'a str,
    pub(super) tx: &'a str,
    pub(super) total: &'a str,
    pub(super) cost: &'a str,
    pub(super) currency: Cow<'a, str>,
}

#[derive(Debug, Default, PartialEq)]
pub(super) struct OperatorFields<'a> {
    pub(super) name: Option<Cow<'a, str>>,
    pub(super) mnc: Option<Cow<'a, str>>,
    pub(super) mcc: Option<Cow<'a, str>>,
    pub(super) country_name: Option<Cow<'a, str>>,
}
