//! Tags filters (engine/src/protocol/tags.rs) over arbitrary bytes: the
//! input is a filter (JSON, as a client's `tf`) and a tags object after the
//! first newline. Parsing, validation and matching never panic; a filter
//! that validates keeps its canonical key through a round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast::protocol::tags::{self, FilterNode};

fuzz_target!(|data: &[u8]| {
    let (filter, rest) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let Ok(f) = serde_json::from_slice::<FilterNode>(filter) else {
        return;
    };
    if f.validate().is_err() {
        return;
    }
    let t = tags::of_object(rest);
    let _ = f.matches(&t);
    let again: FilterNode = serde_json::from_str(&f.key()).expect("a key parses");
    assert_eq!(again.key(), f.key(), "canonical key");
    assert_eq!(again.matches(&t), f.matches(&t));
});
