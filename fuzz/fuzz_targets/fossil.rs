//! Fossil deltas (engine/src/protocol/fossil.rs) over arbitrary bytes: the
//! input is split into a source, a target and a delta. `apply` never panics
//! on any delta; `create(source, target)` always applies back to `target`,
//! and is UTF-8 whenever the target is (it travels in a JSON string).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast::protocol::fossil;

fuzz_target!(|data: &[u8]| {
    let (head, rest) = data.split_at(data.len().min(2));
    let cut = |n: u8, of: &[u8]| (n as usize * of.len() / 256).min(of.len());
    let (a_len, b_len) = match head {
        [x, y] => (*x, *y),
        _ => (0, 0),
    };
    let (source, rest) = rest.split_at(cut(a_len, rest));
    let (target, junk) = rest.split_at(cut(b_len, rest));

    let _ = fossil::apply(source, junk);

    let d = fossil::create(source, target);
    assert_eq!(fossil::apply(source, &d).as_deref(), Ok(target), "round trip");
    if std::str::from_utf8(target).is_ok() {
        assert!(std::str::from_utf8(&d).is_ok(), "a text target made a non-text delta");
    }
});
