//! The protobuf client protocol over arbitrary bytes: a binary message's
//! length-delimited commands (transcoded to JSON command lines, which must
//! then parse as JSON), and JSON reply lines re-encoded as protobuf
//! replies. Nothing may panic; every transcoded command is one JSON line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast::protocol::command;
use ringcast::protocol::protobuf::{decode_commands, encode_replies, Line};

fuzz_target!(|data: &[u8]| {
    if let Ok(lines) = decode_commands(data) {
        for line in lines {
            if let Line::Json(json) = line {
                assert!(!json.contains(&b'\n'), "one line per command");
                serde_json::from_slice::<serde_json::Value>(&json).expect("valid JSON");
                let _ = command::parse(&json);
            }
        }
    }
    let _ = encode_replies(data);
});
