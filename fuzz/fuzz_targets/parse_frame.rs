//! The frame decoder over arbitrary bytes: the first byte picks the role and
//! small limits, the rest is the wire. Decodes until it needs more input or
//! fails, checking what it hands out. It must never panic.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use ringcast::ws::close::is_valid_wire_code;
use ringcast::ws::{Decoder, DecoderConfig, Message, Role};

fuzz_target!(|data: &[u8]| {
    let Some((&knobs, wire)) = data.split_first() else {
        return;
    };
    let max_message = [0, 125, 1000, 4096][((knobs >> 3) & 0x3) as usize];
    let cfg = DecoderConfig {
        role: if knobs & 0x80 == 0 {
            Role::Server
        } else {
            Role::Client
        },
        // The engine always runs with max_frame <= max_message
        // (`DecoderConfig::server`). With max_frame > max_message an
        // unfragmented message may exceed max_message: see
        // engine/tests/codec_props.rs `single_frame_over_max_message_is_refused`.
        max_frame: [0, 1, 125, 126, 300, 4096][(knobs & 0x7) as usize % 6].min(max_message),
        max_message,
        // permessage-deflate: RSV1 messages are inflated (bounded).
        deflate: knobs & 0x40 != 0,
    };
    let mut d = Decoder::new();
    // Feed in two pieces when bit 5 is set, to exercise partial input.
    let split = if knobs & 0x20 != 0 {
        wire.len() / 2
    } else {
        wire.len()
    };
    let mut buf = BytesMut::from(&wire[..split]);
    for more in [&wire[split..], &[][..]] {
        loop {
            let before = buf.len();
            match d.decode(&mut buf, &cfg) {
                Ok(Some(m)) => {
                    assert!(buf.len() < before, "a message from no input");
                    check(&m, &cfg);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        buf.extend_from_slice(more);
    }
});

fn check(m: &Message, cfg: &DecoderConfig) {
    match m {
        Message::Text(p) => {
            assert!(p.len() <= cfg.max_message);
            assert!(std::str::from_utf8(p).is_ok(), "text that is not UTF-8");
        }
        Message::Binary(p) => assert!(p.len() <= cfg.max_message),
        Message::Ping(p) | Message::Pong(p) => assert!(p.len() <= 125),
        Message::Close(Some(c)) => {
            assert!(is_valid_wire_code(c.code));
            assert!(std::str::from_utf8(&c.reason).is_ok());
        }
        Message::Close(None) => {}
    }
}
