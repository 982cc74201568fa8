//! Any bytes as a line of the events topic (lifecycle or directory): an event or a
//! rejection, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = simtally::decode::decode_any_event(data);
    let _ = simtally::decode::decode_event(data);
});
