//! The HTTP upgrade parser over arbitrary bytes, at the server's default
//! header bound and at a small one. It must never panic, and a request it
//! accepts must fit the bound and carry a valid key. `plain_target` (a
//! plain HTTP request's method and path) never panics either, and finds a
//! target only in a head the upgrade parser also sees complete.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast::ws::handshake::{accept_key, parse_request, plain_target};

fuzz_target!(|data: &[u8]| {
    for max in [8192, 256] {
        match parse_request(data, max) {
            Ok(Some((req, n))) => {
                assert!(n <= data.len() && n <= max);
                assert_eq!(accept_key(&req.key).len(), 28);
            }
            Ok(None) => assert!(data.len() < max),
            Err(e) => {
                let resp = e.response();
                assert!(resp.starts_with(b"HTTP/1.1 4"));
            }
        }
    }
    if let Some((method, path)) = plain_target(data) {
        assert!(!method.is_empty() && !path.contains('?'));
        // A complete head for one is a complete head for the other.
        assert_ne!(parse_request(data, data.len() + 1), Ok(None));
    }
});
