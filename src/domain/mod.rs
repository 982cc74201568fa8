//! The vocabulary of simtally: every value here was parsed from the outside world and is
//! valid by construction, so the layers after `decode` never re-check it.

mod amount;
mod directory;
mod event;
mod iccid;
mod ids;
mod rejection;
mod text;
mod time;
mod usage;

pub use amount::{AmountError, Fixed, Money, Volume};
pub use directory::{
    Actor, DirectoryChange, DirectoryEvent, OrganizationId, Role, UserId, DIRECTORY_EVENT_TYPES,
};
pub use event::{DeviceId, EventKind, EventType, LifecycleEvent, SimStatus};
pub use iccid::{Iccid, IccidError};
pub use ids::{RecordId, WorkspaceId};
pub use rejection::{Reason, Rejection};
pub use text::Text;
pub use time::{TimestampError, UtcMillis};
pub use usage::{Costs, Currency, Operator, TrafficType, UsageRecord, Volumes};
