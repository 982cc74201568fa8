//! Any bytes as a usage record line: a record or a rejection, never a panic; an accepted
//! record's amounts are exact and consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = simtally::decode::decode_usage(data) {
        assert!(record.start <= record.end);
        assert!(!record.cost.is_negative());
    }
});
