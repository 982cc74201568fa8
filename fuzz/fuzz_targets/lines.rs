//! Any bytes as an input: cut into chunks of whole lines (with a small line limit, so long
//! lines are cut too), every line numbered once and in order.
#![no_main]

use libfuzzer_sys::fuzz_target;
use simtally::source::ChunkReader;

fuzz_target!(|data: &[u8]| {
    let reader = ChunkReader::from_reader("fuzz", Box::new(std::io::Cursor::new(data.to_vec())))
        .with_max_line(4096);
    let mut reader = reader;
    let mut next = 1;
    while let Some(chunk) = reader.next_chunk().unwrap() {
        for (line, _) in chunk.records() {
            assert_eq!(line, next);
            next += 1;
        }
    }
});
