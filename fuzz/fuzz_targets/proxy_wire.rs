//! A proxy backend's answer (engine/src/proxy/wire.rs) over arbitrary bytes,
//! read as each result type the proxies expect (connect, refresh,
//! subscribe, publish, rpc). Parsing must never panic; an accepted
//! disconnect has a code in 3000-4999 and a reason of at most 123 bytes, an
//! accepted error a non-zero code; every `data` / `info` of a result goes
//! through `wire::payload` (the `b64` forms must decode to JSON) without
//! panicking, and what it gives is JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast::proxy::wire::{
    self, Answer, ConnectResult, PublishResult, RefreshResult, RpcResult, SubscribeResult,
};
use serde_json::value::RawValue;

/// `wire::payload` on one field pair: no panic; a raw value wins over
/// base64 and is returned as is; whatever comes back is valid JSON.
fn payload(raw: &Option<Box<RawValue>>, b64: &Option<String>, what: &str) {
    match wire::payload(raw, b64, what) {
        Ok(Some(v)) => {
            if let Some(r) = raw {
                assert_eq!(v.get(), r.get(), "a raw {what} is returned unchanged");
            }
            assert!(
                serde_json::from_str::<&RawValue>(v.get()).is_ok(),
                "{what} payload is not JSON: {:?}",
                v.get()
            );
        }
        Ok(None) => assert!(raw.is_none() && b64.is_none(), "{what}: set, yet none"),
        Err(e) => {
            assert!(raw.is_none(), "a raw {what} never fails");
            assert!(e.0.starts_with("b64"), "{what}: {}", e.0);
        }
    }
}

/// Parses `$data` as an answer carrying `$t`; checks the envelope's rules
/// and runs `$each` on a result (a macro: `parse_answer`'s bound is serde's
/// `Deserialize`, and this crate does not depend on serde).
macro_rules! answer {
    ($t:ty, $data:expr, |$r:ident| $each:expr) => {
        match wire::parse_answer::<$t>($data) {
            Ok(Answer::Result(Some($r))) => $each,
            Ok(Answer::Result(None)) => {}
            Ok(Answer::Error { code, .. }) => assert_ne!(code, 0, "error code 0 accepted"),
            Ok(Answer::Disconnect { code, reason }) => {
                assert!((3000..=4999).contains(&code), "disconnect code {code}");
                assert!(
                    reason.len() <= 123,
                    "disconnect reason of {} bytes",
                    reason.len()
                );
            }
            Err(_) => {}
        }
    };
}

fuzz_target!(|data: &[u8]| {
    answer!(ConnectResult, data, |r| {
        payload(&r.info, &r.b64info, "info");
        payload(&r.data, &r.b64data, "data");
        for o in r.subs.values() {
            payload(&o.info, &o.b64info, "info");
            payload(&o.data, &o.b64data, "data");
        }
    });
    answer!(RefreshResult, data, |r| {
        payload(&r.info, &r.b64info, "info");
    });
    answer!(SubscribeResult, data, |r| {
        payload(&r.info, &r.b64info, "info");
        payload(&r.data, &r.b64data, "data");
    });
    answer!(PublishResult, data, |r| {
        payload(&r.data, &r.b64data, "data");
    });
    answer!(RpcResult, data, |r| {
        payload(&r.data, &r.b64data, "data");
    });
});
