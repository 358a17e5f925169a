//! `--realtime-priority N`: every shard thread runs under SCHED_FIFO at N
//! and nothing else of the process does; a server that may not take it
//! does not start, and says what would allow it.
mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Proto, Server};
use serde_json::json;

/// (name, policy, rt_priority) of every thread of `pid`, from
/// `/proc/PID/task/*/stat` (fields 40 and 41, counted from 1, after the
/// parenthesised name).
fn threads(pid: u32) -> Vec<(String, i64, i64)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let stat = std::fs::read_to_string(e.unwrap().path().join("stat")).unwrap();
        let open = stat.find('(').unwrap();
        let close = stat.rfind(')').unwrap();
        let name = stat[open + 1..close].to_string();
        // Field 3 (state) is the first after the name.
        let rest: Vec<&str> = stat[close + 2..].split(' ').collect();
        let field = |n: usize| rest[n - 3].parse::<i64>().unwrap();
        out.push((name, field(41), field(40)));
    }
    out
}

#[test]
fn every_shard_thread_and_nothing_else_runs_under_sched_fifo() {
    let server = Server::start(
        "serve",
        &["--shards", "2", "--realtime-priority", "3", "--insecure"],
    );
    let all = threads(server.pid());
    let shards: Vec<_> = all.iter().filter(|t| t.0.starts_with("shard-")).collect();
    assert_eq!(shards.len(), 2, "{all:?}");
    for t in &shards {
        assert_eq!((t.1, t.2), (1, 3), "SCHED_FIFO at 3: {all:?}");
    }
    for t in all.iter().filter(|t| !t.0.starts_with("shard-")) {
        assert_eq!((t.1, t.2), (0, 0), "SCHED_OTHER: {all:?}");
    }
    assert!(
        server.log_text().contains("realtime_priority=3"),
        "{}",
        server.log_text()
    );
    // /metrics reads it back from the kernel, per shard: 3 + 3.
    assert_eq!(server.metric("ringcast_shard_realtime_priority"), 6.0);
    // And it serves: a publication reaches a subscriber.
    let mut sub = Proto::connected(&server, None).0;
    sub.send(r#"{"id":2,"subscribe":{"channel":"rt"}}"#);
    assert!(sub.reply(2).get("error").is_none());
    let mut publisher = Proto::connected(&server, None).0;
    publisher.send(r#"{"id":2,"publish":{"channel":"rt","data":{"n":1}}}"#);
    assert_eq!(publisher.reply(2), json!({"id": 2, "publish": {}}));
    assert_eq!(sub.next()["push"]["pub"]["data"], json!({"n": 1}));
}

#[test]
fn refused_realtime_fails_the_start_with_what_would_allow_it() {
    // Without CAP_SYS_NICE (out of the bounding set, so the exec'd root
    // process does not get it) and with RLIMIT_RTPRIO 0, SCHED_FIFO is
    // refused with EPERM.
    let mut child = Command::new("prlimit")
        .args([
            "--rtprio=0:0",
            "--",
            "setpriv",
            "--bounding-set",
            "-sys_nice",
            "--",
        ])
        .arg(env!("CARGO_BIN_EXE_ringcast"))
        .args(["serve", "--port", "0", "--address", "127.0.0.1", "--no-pin"])
        .args(["--insecure", "--realtime-priority", "5"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run prlimit and setpriv (util-linux)");
    let status = common::wait_for(Duration::from_secs(20), "the server to exit", || {
        child.try_wait().unwrap()
    });
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!status.success(), "started anyway:\n{stdout}\n{stderr}");
    assert!(!stdout.contains("\"ready\""), "{stdout}");
    for want in [
        "realtime priority 5",
        "Operation not permitted",
        "CAP_SYS_NICE",
        "LimitRTPRIO=5",
    ] {
        assert!(stderr.contains(want), "no {want:?} in:\n{stderr}");
    }
}

#[test]
fn an_out_of_range_priority_is_a_configuration_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_ringcast"))
        .args(["serve", "--port", "0", "--address", "127.0.0.1", "--no-pin"])
        .args(["--insecure", "--realtime-priority", "100"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("server.realtime_priority"), "{stderr}");
}
