use std::fmt;

/// Why an input became a dead letter. The `as_str` codes are the `reason` column of the
/// `dead_letters` table and are stable: dashboards and alerts group by them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    NotUtf8,
    LineTooLong,
    NotJson,
    NotAnObject,
    MissingField,
    InvalidField,
    UnknownTrafficType,
    UnknownEventType,
    UnknownStatus,
    InvalidIccid,
    InvalidWorkspace,
    InvalidTimestamp,
    ImplausibleTimestamp,
    EndBeforeStart,
    NegativeAmount,
    TooPrecise,
    TotalMismatch,
    InvalidCurrency,
    ConflictingDuplicate,
    UnregisteredSim,
    AlreadyRegistered,
    TransferSourceNotOwner,
    TransferToSameWorkspace,
    UnknownRole,
    DirectoryRule,
    /// The actor an event names may not make that change.
    NotAllowed,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NotUtf8 => "not_utf8",
            Reason::LineTooLong => "line_too_long",
            Reason::NotJson => "not_json",
            Reason::NotAnObject => "not_an_object",
            Reason::MissingField => "missing_field",
            Reason::InvalidField => "invalid_field",
            Reason::UnknownTrafficType => "unknown_traffic_type",
            Reason::UnknownEventType => "unknown_event_type",
            Reason::UnknownStatus => "unknown_status",
            Reason::InvalidIccid => "invalid_iccid",
            Reason::InvalidWorkspace => "invalid_workspace",
            Reason::InvalidTimestamp => "invalid_timestamp",
            Reason::ImplausibleTimestamp => "implausible_timestamp",
            Reason::EndBeforeStart => "end_before_start",
            Reason::NegativeAmount => "negative_amount",
            Reason::TooPrecise => "too_precise",
            Reason::TotalMismatch => "total_mismatch",
            Reason::InvalidCurrency => "invalid_currency",
            Reason::ConflictingDuplicate => "conflicting_duplicate",
            Reason::UnregisteredSim => "unregistered_sim",
            Reason::AlreadyRegistered => "already_registered",
            Reason::TransferSourceNotOwner => "transfer_source_not_owner",
            Reason::TransferToSameWorkspace => "transfer_to_same_workspace",
            Reason::UnknownRole => "unknown_role",
            Reason::DirectoryRule => "directory_rule",
            Reason::NotAllowed => "not_allowed",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An input refused, with a stable reason code and a message a person can act on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct Rejection {
    pub reason: Reason,
    pub detail: String,
}

impl Rejection {
    pub fn new(reason: Reason, detail: String) -> Self {
        Rejection { reason, detail }
    }

    /// A line of `length` bytes, over the `limit` of what is read whole, of which the
    /// payload keeps the first `kept`.
    pub fn line_too_long(length: u64, limit: usize, kept: usize) -> Self {
        Rejection::new(
            Reason::LineTooLong,
            format!(
                "the line is {length} bytes, over the limit of {limit} (--max-line-bytes); \
                 the payload keeps its first {kept}"
            ),
        )
    }
}
