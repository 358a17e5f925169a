//! The client command parser over arbitrary bytes: the whole input as one
//! line, then each line `lines()` splits it into (as a WebSocket frame is
//! handled). It must never panic, and what it accepts must be consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast::protocol::command::{lines, parse, Command, ParseError};

fuzz_target!(|data: &[u8]| {
    check(data);
    for line in lines(data) {
        assert!(!line.contains(&b'\n'), "a line with a newline in it");
        assert!(
            !line.iter().all(u8::is_ascii_whitespace),
            "a blank line handed out"
        );
        check(line);
    }
});

fn check(line: &[u8]) {
    match parse(line) {
        // Without an id only the pong and `send` are commands.
        Ok((0, cmd)) => assert!(
            matches!(cmd, Command::Pong | Command::Send(_)),
            "id 0 accepted for {cmd:?}"
        ),
        Ok((_, Command::Pong)) => panic!("a pong with an id"),
        // `data` is forwarded byte for byte: a non-empty slice of the line.
        Ok((_, Command::Publish(p))) => {
            let d = p.data.get().as_bytes();
            let r = line.as_ptr_range();
            assert!(!d.is_empty());
            assert!(r.start <= d.as_ptr() && d.as_ptr_range().end <= r.end);
        }
        Ok(_) => {}
        Err(ParseError::BadRequest { .. }) | Err(ParseError::Undecodable) => {}
    }
}
