//! Any bytes as a directory event: an event or a rejection, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = simtally::decode::decode_directory_event(data);
});
