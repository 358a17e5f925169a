//! Every scenario in `--smoke` mode against real servers: the comparison
//! peer (`peer-tokio-ws`) and `ringcast echo`, each started as its own
//! process on an ephemeral port. Asserts the JSON report is sane: all
//! connections up, messages flowing, nothing lost, duplicated or reordered.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::Value;

const API_KEY: &str = "bench-smoke-key";

/// Builds `package` (once per test process, same profile as this test) and
/// returns the path of its binary `name`.
fn binary(package: &str, name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    let bench = PathBuf::from(env!("CARGO_BIN_EXE_ringcast-bench"));
    let dir = bench.parent().expect("binary dir").to_path_buf();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    if !built.iter().any(|p| p == package) {
        let profile = match dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => "dev".to_string(),
            Some(p) => p.to_string(),
        };
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "-p", package, "--profile", &profile])
            .status()
            .expect("running cargo build");
        assert!(status.success(), "cargo build -p {package} failed");
        built.push(package.to_string());
    }
    let path = dir.join(name);
    assert!(path.exists(), "{} missing after the build", path.display());
    path
}

/// A server process, killed on drop.
struct Server {
    child: Child,
    /// The client port, then any other ports the log names (ringcast serve:
    /// the API port and the TCP publisher port).
    ports: Vec<u16>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Starts `cmd` and reads its log (stdout or stderr) until a line gives
    /// the port it listens on.
    fn start(mut cmd: Command, ports_from: fn(&str) -> Option<Vec<u16>>) -> Server {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning server");
        let (tx, rx) = mpsc::channel();
        let streams: [Box<dyn Read + Send>; 2] = [
            Box::new(child.stdout.take().unwrap()),
            Box::new(child.stderr.take().unwrap()),
        ];
        for s in streams {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(s).lines().map_while(Result::ok) {
                    if let Some(p) = ports_from(&line) {
                        let _ = tx.send(p);
                    }
                }
            });
        }
        let ports = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("server did not say where it listens");
        Server { child, ports }
    }

    /// `peer-tokio-ws --port 0 --threads 1 --ping-interval 1`.
    fn peer() -> Server {
        let mut cmd = Command::new(binary("ringcast-peer-tokio-ws", "peer-tokio-ws"));
        cmd.args(["--port", "0", "--threads", "1", "--ping-interval", "1"]);
        Server::start(cmd, |l| {
            let port = l.split("listening on ").nth(1)?.trim().rsplit(':').next()?;
            Some(vec![port.parse().ok()?])
        })
    }

    /// `ringcast echo --port 0 --shards 1`.
    fn ringcast_echo() -> Server {
        Server::ringcast(&["echo", "--shards", "1"])
    }

    /// `ringcast serve --insecure --api-key KEY`, every port 0 (client
    /// publish allowed; API and TCP publisher port with the key).
    fn ringcast_serve() -> Server {
        Server::ringcast(&[
            "serve",
            "--insecure",
            "--shards",
            "2",
            "--ping-interval",
            "1",
            "--api-port",
            "0",
            "--publisher-port",
            "0",
            "--api-key",
            API_KEY,
        ])
    }

    fn ringcast(args: &[&str]) -> Server {
        let mut cmd = Command::new(binary("ringcast", "ringcast"));
        cmd.args(args)
            .args(["--port", "0", "--address", "127.0.0.1", "--no-pin"])
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1");
        // `listening listen=127.0.0.1:P extra=["127.0.0.1:A", "127.0.0.1:T"] shards=2`
        Server::start(cmd, |l| {
            let rest = l.split("listen=").nth(1)?;
            let port = |a: &str| -> Option<u16> {
                a.trim_matches(|c| "[]\",".contains(c))
                    .rsplit(':')
                    .next()?
                    .parse()
                    .ok()
            };
            let mut ports = vec![port(rest.split_whitespace().next()?)?];
            if let Some(extra) = rest.split("extra=").nth(1) {
                let list = &extra[..extra.find(']').unwrap_or(extra.len())];
                ports.extend(list.split(", ").filter_map(port));
            }
            Some(ports)
        })
    }

    fn url(&self, path: &str) -> String {
        format!("ws://127.0.0.1:{}{path}", self.ports[0])
    }
}

/// Runs `ringcast-bench <args> --smoke --json --no-progress` and parses stdout.
fn bench(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_ringcast-bench"))
        .args(args)
        .args(["--smoke", "--json", "--no-progress"])
        .output()
        .expect("running ringcast-bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "ringcast-bench {args:?} failed: {}\n{stderr}",
        out.status
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "bad JSON ({e}):\n{}\n{stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn u(v: &Value, path: &str) -> u64 {
    v.pointer(path)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no integer at {path} in {v:#}"))
}

fn all_connected(r: &Value) {
    let attempted = u(r, "/connections/attempted");
    assert!(attempted > 0, "{r:#}");
    assert_eq!(u(r, "/connections/established"), attempted, "{r:#}");
    assert_eq!(u(r, "/connections/errors"), 0, "{r:#}");
    assert_eq!(u(r, "/connections/disconnects"), 0, "{r:#}");
    assert_eq!(u(r, "/protocol_errors"), 0, "{r:#}");
}

fn fanout_clean(r: &Value) {
    all_connected(r);
    assert!(u(r, "/fanout/delivered") > 0, "{r:#}");
    assert_eq!(u(r, "/fanout/lost"), 0, "{r:#}");
    assert_eq!(u(r, "/fanout/duplicated"), 0, "{r:#}");
    assert_eq!(u(r, "/fanout/out_of_order"), 0, "{r:#}");
    assert_eq!(u(r, "/fanout/publish_errors"), 0, "{r:#}");
    assert_eq!(u(r, "/fanout/published"), u(r, "/fanout/acked"), "{r:#}");
    assert_eq!(u(r, "/fanout/delivered"), u(r, "/fanout/expected"), "{r:#}");
    assert!(u(r, "/latency/count") > 0, "{r:#}");
    let f = |k: &str| {
        r["fanout"][k]
            .as_f64()
            .unwrap_or_else(|| panic!("no {k}: {r:#}"))
    };
    assert!(f("delivered_per_s") > 0.0, "{r:#}");
    assert!(f("acked_per_s") > 0.0, "{r:#}");
    assert!(f("delivery_span_s") > 0.0, "{r:#}");
    assert!(f("delivered_per_window_s") > 0.0, "{r:#}");
    assert!(
        r["latency_timeline"]
            .as_array()
            .is_some_and(|t| !t.is_empty()),
        "{r:#}"
    );
}

#[test]
fn hold_centrifuge_answers_pings() {
    let peer = Server::peer();
    let pid = peer.pid().to_string();
    let r = bench(&[
        "hold",
        "--url",
        &peer.url("/connection/websocket"),
        "-n",
        "10",
        "--channels",
        "3",
        "-d",
        "1.5",
        "--server-pid",
        &pid,
    ]);
    all_connected(&r);
    assert_eq!(r["scenario"], "hold");
    assert_eq!(u(&r, "/hold/held"), 10);
    assert!(u(&r, "/hold/pings_answered") > 0, "{r:#}");
    assert!(u(&r, "/server/rss_established_bytes") > 0, "{r:#}");
    assert!(r["server"]["rss_per_conn_bytes"].is_number(), "{r:#}");
}

#[test]
fn hold_raw_over_several_processes_and_source_addresses() {
    let server = Server::ringcast_echo();
    let pid = server.pid().to_string();
    let r = bench(&[
        "hold",
        "--url",
        &server.url("/"),
        "--protocol",
        "raw",
        "-n",
        "12",
        "--procs",
        "2",
        "--conns-per-addr",
        "4",
        "--server-pid",
        &pid,
    ]);
    all_connected(&r);
    assert_eq!(u(&r, "/layout/procs"), 2);
    assert_eq!(u(&r, "/connections/source_addresses"), 3);
    assert!(u(&r, "/server/rss_before_bytes") > 0, "{r:#}");
}

#[test]
fn echo_against_the_peer() {
    let peer = Server::peer();
    let pid = peer.pid().to_string();
    let r = bench(&["echo", "--url", &peer.url("/echo"), "--server-pid", &pid]);
    all_connected(&r);
    assert!(u(&r, "/echo/received") > 0, "{r:#}");
    assert_eq!(u(&r, "/echo/mismatched"), 0, "{r:#}");
    assert!(u(&r, "/latency/count") > 0, "{r:#}");
    assert!(r["server"]["cpu_us_per_msg"].is_number(), "{r:#}");
}

#[test]
fn echo_against_ringcast() {
    let server = Server::ringcast_echo();
    let r = bench(&["echo", "--url", &server.url("/"), "--text", "-s", "300"]);
    all_connected(&r);
    assert!(u(&r, "/echo/received") > 0, "{r:#}");
    assert_eq!(u(&r, "/echo/mismatched"), 0, "{r:#}");
}

#[test]
fn fanout_at_a_rate() {
    let peer = Server::peer();
    let pid = peer.pid().to_string();
    for pace in ["even", "burst"] {
        let r = bench(&[
            "fanout",
            "--url",
            &peer.url("/connection/websocket"),
            "--server-pid",
            &pid,
            "--publishers",
            "2",
            "--pace",
            pace,
        ]);
        fanout_clean(&r);
        assert_eq!(r["config"]["pace"], pace, "{r:#}");
        assert_eq!(u(&r, "/fanout/rate_deficit"), 0, "{r:#}");
        assert!(r["server"]["cpu_us_per_msg"].is_number(), "{r:#}");
    }
}

#[test]
fn fanout_max_with_two_processes_and_workers() {
    let peer = Server::peer();
    let r = bench(&[
        "fanout",
        "--url",
        &peer.url("/connection/websocket"),
        "--max",
        "--procs",
        "2",
        "--workers",
        "2",
        "--publishers",
        "3",
        "--channels",
        "2",
    ]);
    fanout_clean(&r);
    assert_eq!(u(&r, "/layout/procs"), 2);
}

#[test]
fn hold_and_fanout_against_ringcast_serve() {
    let server = Server::ringcast_serve();
    let pid = server.pid().to_string();
    let url = server.url("/connection/websocket");
    let r = bench(&[
        "hold",
        "--url",
        &url,
        "-n",
        "10",
        "--channels",
        "3",
        "-d",
        "1.5",
    ]);
    all_connected(&r);
    assert!(u(&r, "/hold/pings_answered") > 0, "{r:#}");
    let r = bench(&["fanout", "--url", &url, "--server-pid", &pid]);
    fanout_clean(&r);
    let r = bench(&["fanout", "--url", &url, "--max", "--publishers", "3"]);
    fanout_clean(&r);
}

#[test]
fn fanout_with_api_and_tcp_publishers() {
    let server = Server::ringcast_serve();
    assert_eq!(server.ports.len(), 3, "client, API and publisher ports");
    let url = server.url("/connection/websocket");
    let api = format!("http://127.0.0.1:{}/api", server.ports[1]);
    let tcp = format!("127.0.0.1:{}", server.ports[2]);
    for mode in ["--rate", "--max"] {
        let mut http = vec![
            "fanout",
            "--url",
            &url,
            "--publisher",
            "http",
            "--api-url",
            &api,
        ];
        http.extend(["--api-key", API_KEY, "--publishers", "2"]);
        let mut tcp_args = vec!["fanout", "--url", &url, "--publisher", "tcp"];
        tcp_args.extend([
            "--publisher-addr",
            &tcp,
            "--api-key",
            API_KEY,
            "--publishers",
            "2",
        ]);
        for args in [&mut http, &mut tcp_args] {
            if mode == "--rate" {
                args.extend(["--rate", "300"]);
            } else {
                args.push("--max");
            }
            let r = bench(args);
            fanout_clean(&r);
        }
    }
}

#[test]
fn a_wrong_api_key_fails_the_publishers() {
    let server = Server::ringcast_serve();
    let url = server.url("/connection/websocket");
    let tcp = format!("127.0.0.1:{}", server.ports[2]);
    let out = Command::new(env!("CARGO_BIN_EXE_ringcast-bench"))
        .args([
            "fanout",
            "--url",
            &url,
            "--publisher",
            "tcp",
            "--publisher-addr",
            &tcp,
        ])
        .args(["--api-key", "wrong", "--smoke", "--json", "--no-progress"])
        .output()
        .unwrap();
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(u(&r, "/connections/errors"), 1, "the one publisher: {r:#}");
    let errors = r["errors"].to_string();
    assert!(errors.contains("unauthorized"), "{errors}");
}

#[test]
fn refused_connections_are_counted_not_fatal() {
    // A port nobody listens on: every connect fails, the report says so.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let out = Command::new(env!("CARGO_BIN_EXE_ringcast-bench"))
        .args(["hold", "--protocol", "raw", "-n", "3", "--smoke", "--json"])
        .args(["--no-progress", "--url", &format!("ws://127.0.0.1:{port}/")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "no connection at all exits 1");
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(u(&r, "/connections/errors"), 3);
}
