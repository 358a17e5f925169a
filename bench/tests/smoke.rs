//! Every scenario in `--smoke` mode against real servers: the comparison
//! peer (`peer-tokio-ws`), `ringcast echo` and `ringcast serve`, each
//! started as its own process on an ephemeral port. Asserts the JSON report
//! is sane: all connections up, messages flowing, nothing lost, duplicated
//! or reordered (the storm against the peer, which has no recovery, must
//! report its losses instead); `--report` writes report.md and SVG charts.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
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
        Server::ringcast_serve_with(&[])
    }

    /// `ringcast_serve` with a config file whose `storm` namespace keeps
    /// history and forces recovery (what `bench storm` needs).
    fn ringcast_storm() -> Server {
        Server::ringcast_storm_with(&[])
    }

    fn ringcast_storm_with(extra: &[&str]) -> Server {
        let cfg = scratch("storm.toml");
        std::fs::write(
            &cfg,
            "[namespace.storm]\nhistory_size = 1000\nhistory_ttl = 300\nforce_recovery = true\n",
        )
        .unwrap();
        let mut args = vec!["--config", cfg.to_str().unwrap()];
        args.extend(extra);
        Server::ringcast_serve_with(&args)
    }

    fn ringcast_serve_with(extra: &[&str]) -> Server {
        let mut args = vec![
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
        ];
        args.extend(extra);
        Server::ringcast(&args)
    }

    fn ringcast(args: &[&str]) -> Server {
        let mut cmd = Command::new(binary("ringcast", "ringcast"));
        cmd.args(args)
            .args(["--port", "0", "--address", "127.0.0.1", "--no-pin"])
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1");
        // The ready line on stdout: {"ready":{"listen":..,"api":..,"publisher":..}}.
        Server::start(cmd, |l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            let ready = v.get("ready")?;
            let port = |name: &str| -> Option<u16> {
                ready.get(name)?.as_str()?.rsplit(':').next()?.parse().ok()
            };
            let mut ports = vec![port("listen")?];
            ports.extend(["api", "publisher"].into_iter().filter_map(port));
            Some(ports)
        })
    }

    fn url(&self, path: &str) -> String {
        format!("ws://127.0.0.1:{}{path}", self.ports[0])
    }

    /// ringcast serve: the client URL, `--api-url` and `--publisher-addr`.
    fn endpoints(&self) -> (String, String, String) {
        (
            self.url("/connection/websocket"),
            format!("http://127.0.0.1:{}/api", self.ports[1]),
            format!("127.0.0.1:{}", self.ports[2]),
        )
    }
}

/// A fresh path under the target directory's tmp (removed first if there).
fn scratch(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "bench-smoke-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Runs `ringcast-bench <args> --smoke --json --no-progress`: exit code
/// and the parsed report.
fn bench_status(args: &[&str]) -> (Option<i32>, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_ringcast-bench"))
        .args(args)
        .args(["--smoke", "--json", "--no-progress"])
        .output()
        .expect("running ringcast-bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "ringcast-bench {args:?}: bad JSON ({e}), {}:\n{}\n{stderr}",
            out.status,
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (out.status.code(), v)
}

/// `bench_status` that must succeed.
fn bench(args: &[&str]) -> Value {
    let (code, v) = bench_status(args);
    assert_eq!(code, Some(0), "ringcast-bench {args:?} failed: {v:#}");
    v
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
    assert!(r["server"]["anon_per_conn_bytes"].is_number(), "{r:#}");
    // A warm-up ran before the "before" sample (the default 64, capped
    // at 4 by --smoke), and its connections were established.
    assert_eq!(r["config"]["warmup"], 4, "{r:#}");
    assert_eq!(u(&r, "/hold/warmup_established"), 4, "{r:#}");
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
fn fanout_with_realtime_workers_and_refused_without_permission() {
    let peer = Server::peer();
    let pid = peer.pid().to_string();
    let url = peer.url("/connection/websocket");
    let r = bench(&[
        "fanout",
        "--url",
        &url,
        "--server-pid",
        &pid,
        "--workers",
        "2",
        "--realtime-priority",
        "2",
    ]);
    fanout_clean(&r);
    assert_eq!(u(&r, "/layout/realtime_priority"), 2, "{r:#}");
    // Without CAP_SYS_NICE and with RLIMIT_RTPRIO 0 it stops before it
    // connects, and says why.
    let out = Command::new("prlimit")
        .args([
            "--rtprio=0:0",
            "--",
            "setpriv",
            "--bounding-set",
            "-sys_nice",
            "--",
        ])
        .arg(env!("CARGO_BIN_EXE_ringcast-bench"))
        .args(["fanout", "--url", &url, "--realtime-priority", "2"])
        .args(["--smoke", "--json", "--no-progress"])
        .output()
        .expect("run prlimit and setpriv (util-linux)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    for want in [
        "--realtime-priority 2",
        "Operation not permitted",
        "CAP_SYS_NICE",
    ] {
        assert!(stderr.contains(want), "no {want:?} in:\n{stderr}");
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
        "--rx-timestamps",
    ]);
    fanout_clean(&r);
    assert_eq!(u(&r, "/layout/procs"), 2);
    // Every delivery was split at the subscriber's socket, and each part
    // lies within the whole (kernel and bench clocks agree to a few µs).
    let f = |path: &str| r.pointer(path).and_then(Value::as_f64).unwrap_or(-1.0);
    assert_eq!(
        u(&r, "/socket_latency/count"),
        u(&r, "/latency/count"),
        "{r:#}"
    );
    assert_eq!(u(&r, "/read_delay/count"), u(&r, "/latency/count"), "{r:#}");
    for q in ["p50_us", "p99_us", "max_us"] {
        let whole = f(&format!("/latency/{q}"));
        for part in ["socket_latency", "read_delay"] {
            let v = f(&format!("/{part}/{q}"));
            assert!(
                v >= 0.0 && v <= whole + 50.0,
                "{part} {q} {v} vs {whole}: {r:#}"
            );
        }
    }
    // Per delivery the two parts add up to the whole, so their means do.
    let sum = f("/socket_latency/mean_us") + f("/read_delay/mean_us");
    let whole = f("/latency/mean_us");
    assert!((sum - whole).abs() <= 50.0, "{sum} vs {whole}: {r:#}");
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
    // With the server's /metrics: its histogram counts every delivery the
    // bench received, and its send counters come along.
    let (_, api, _) = server.endpoints();
    let metrics = api.replace("/api", "/metrics");
    let r = bench(&[
        "fanout",
        "--url",
        &url,
        "--server-pid",
        &pid,
        "--metrics-url",
        &metrics,
    ]);
    fanout_clean(&r);
    let delivered = u(&r, "/fanout/delivered");
    assert_eq!(u(&r, "/server_latency/count"), delivered, "{r:#}");
    assert!(u(&r, "/server_latency/frames") >= delivered, "{r:#}");
    let sends = u(&r, "/server_latency/sends");
    assert!(
        sends >= 1 && sends <= u(&r, "/server_latency/frames"),
        "{r:#}"
    );
    assert_eq!(u(&r, "/server_latency/flush_holds"), 0, "{r:#}");
    let r = bench(&["fanout", "--url", &url, "--max", "--publishers", "3"]);
    fanout_clean(&r);
}

/// The HTTP transports: held connections answer pings over `/emulation`
/// (ping interval 1 s: a missed pong would drop them), subscribers get
/// every publication, with client and API publishers.
#[test]
fn hold_and_fanout_over_the_http_transports() {
    let server = Server::ringcast_serve_with(&["--http-stream", "--sse"]);
    let pid = server.pid().to_string();
    let (url, api, _) = server.endpoints();
    for transport in ["http_stream", "sse"] {
        let t = ["--transport", transport];
        let mut args = vec!["hold", "--url", &url, "-n", "10", "--channels", "3"];
        args.extend(["-d", "2.5", "--server-pid", &pid]);
        args.extend(t);
        let r = bench(&args);
        all_connected(&r);
        assert_eq!(r["transport"]["name"], transport, "{r:#}");
        assert!(
            r["transport"]["url"]
                .as_str()
                .is_some_and(|u| u.ends_with(&format!("/connection/{transport}"))),
            "{r:#}"
        );
        assert_eq!(u(&r, "/hold/held"), 10);
        assert!(u(&r, "/hold/pings_answered") >= 10, "{r:#}");
        let mut args = vec!["fanout", "--url", &url, "--server-pid", &pid];
        args.extend(["--rx-timestamps"]);
        args.extend(t);
        let r = bench(&args);
        fanout_clean(&r);
        assert_eq!(
            u(&r, "/socket_latency/count"),
            u(&r, "/latency/count"),
            "{r:#}"
        );
        let mut args = vec!["fanout", "--url", &url, "--max", "--publisher", "http"];
        args.extend(["--api-url", &api, "--api-key", API_KEY]);
        args.extend(t);
        fanout_clean(&bench(&args));
    }
    let out = Command::new(env!("CARGO_BIN_EXE_ringcast-bench"))
        .args(["hold", "--url", &url, "--protocol", "raw"])
        .args(["--transport", "sse", "--smoke", "--json", "--no-progress"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "raw hold is WebSocket only");
}

/// A storm over SSE: the API's disconnect arrives as a disconnect push at
/// the stream's end, with its code; everyone comes back and recovers.
#[test]
fn storm_over_sse_recovers_everything() {
    let server = Server::ringcast_storm_with(&["--sse"]);
    let (url, api, _) = server.endpoints();
    let r = bench(&[
        "storm",
        "--url",
        &url,
        "--transport",
        "sse",
        "--api-url",
        &api,
        "--api-key",
        API_KEY,
        "--expect-zero-loss",
    ]);
    fanout_clean(&r);
    storm_rounds_complete(&r, 20, 1);
    assert_eq!(u(&r, "/storm/recovered"), 20, "{r:#}");
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

/// The storm's drop rounds all dropped and brought back every subscriber.
fn storm_rounds_complete(r: &Value, conns: u64, drops: u64) {
    assert_eq!(r["scenario"], "storm");
    assert_eq!(u(r, "/storm/drops"), drops, "{r:#}");
    for round in r["storm"]["rounds"].as_array().unwrap() {
        assert_eq!(round["dropped"], conns, "{r:#}");
        assert_eq!(round["resubscribed"], conns, "{r:#}");
        assert!(round["reestablish_s"].as_f64().unwrap() > 0.0, "{r:#}");
    }
    assert_eq!(u(r, "/storm/dropped"), conns * drops, "{r:#}");
}

/// `--report DIR` wrote report.md and the two charts as SVG with lines.
fn report_written(dir: &Path, scenario: &str) {
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        md.starts_with(&format!("# ringcast-bench {scenario}")),
        "{md}"
    );
    for part in [
        "## Command",
        "## Machine",
        "kernel",
        "## Parameters",
        "## Results",
    ] {
        assert!(md.contains(part), "no {part:?} in report.md:\n{md}");
    }
    for chart in ["latency.svg", "throughput.svg"] {
        let svg = std::fs::read_to_string(dir.join(chart)).unwrap();
        assert!(
            svg.starts_with("<svg"),
            "{chart}: {}",
            &svg[..svg.len().min(100)]
        );
        assert!(svg.trim_end().ends_with("</svg>"), "{chart} is cut short");
        assert!(
            svg.contains("<polyline") || svg.contains("<path"),
            "{chart}: no line"
        );
        assert!(
            md.contains(&format!("]({chart})")),
            "report.md does not show {chart}"
        );
    }
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["scenario"], scenario);
}

#[test]
fn storm_against_ringcast_recovers_everything() {
    let server = Server::ringcast_storm();
    let pid = server.pid().to_string();
    let (url, api, tcp) = server.endpoints();
    let dir = scratch("storm-report");
    let dir_s = dir.to_str().unwrap();
    // Two rounds through the server API (`disconnect`, code 3011), HTTP
    // publishers; every loss would fail the run (exit 3).
    let r = bench(&[
        "storm",
        "--url",
        &url,
        "--api-url",
        &api,
        "--api-key",
        API_KEY,
        "--drops",
        "2",
        "--server-pid",
        &pid,
        "--expect-zero-loss",
        "--report",
        dir_s,
    ]);
    let conns = u(&r, "/connections/attempted") - 1;
    assert_eq!(conns, 20, "{r:#}");
    fanout_clean(&r);
    storm_rounds_complete(&r, conns, 2);
    assert_eq!(u(&r, "/storm/recovered"), 2 * conns, "{r:#}");
    assert_eq!(u(&r, "/storm/not_recovered"), 0, "{r:#}");
    assert!(
        u(&r, "/storm/recovered_publications") > 0,
        "nothing was missed: {r:#}"
    );
    assert!(r["server"]["cpu_us_per_msg"].is_number(), "{r:#}");
    report_written(&dir, "storm");
    // The bench resetting its own sockets, TCP publishers.
    let r = bench(&[
        "storm",
        "--url",
        &url,
        "--drop",
        "client",
        "--publisher",
        "tcp",
        "--publisher-addr",
        &tcp,
        "--api-key",
        API_KEY,
        "--expect-zero-loss",
    ]);
    fanout_clean(&r);
    storm_rounds_complete(&r, 20, 1);
    assert_eq!(u(&r, "/storm/recovered"), 20, "{r:#}");
}

#[test]
fn storm_against_the_peer_reports_its_losses() {
    // The peer has no history: reconnected subscribers miss what was
    // published while they were away, and the bench says so (exit 3 with
    // --expect-zero-loss) instead of failing the run.
    let peer = Server::peer();
    let (code, r) = bench_status(&[
        "storm",
        "--url",
        &peer.url("/connection/websocket"),
        "--drop",
        "client",
        "--publisher",
        "client",
        "--expect-zero-loss",
    ]);
    assert_eq!(code, Some(3), "{r:#}");
    all_connected(&r);
    storm_rounds_complete(&r, 20, 1);
    assert_eq!(r["storm"]["rounds"][0]["recovery_ignored"], 20, "{r:#}");
    assert_eq!(u(&r, "/storm/recovered"), 0, "{r:#}");
    assert!(u(&r, "/fanout/lost") > 0, "{r:#}");
    assert_eq!(u(&r, "/fanout/duplicated"), 0, "{r:#}");
}

#[test]
fn publish_ingest_against_ringcast() {
    let server = Server::ringcast_serve();
    let pid = server.pid().to_string();
    let (url, api, tcp) = server.endpoints();
    let dir = scratch("publish-report");
    let r = bench(&[
        "publish",
        "--url",
        &url,
        "--publisher-addr",
        &tcp,
        "--api-key",
        API_KEY,
        "--publishers",
        "2",
        "--count",
        "3000",
        "--server-pid",
        &pid,
        "--report",
        dir.to_str().unwrap(),
    ]);
    all_connected(&r);
    assert_eq!(r["publish"]["via"], "tcp", "{r:#}");
    assert_eq!(u(&r, "/publish/acked"), 3000, "{r:#}");
    assert_eq!(u(&r, "/fanout/published"), 3000, "{r:#}");
    assert_eq!(u(&r, "/publish/errors"), 0, "{r:#}");
    assert!(r["publish"]["acked_per_s"].as_f64().unwrap() > 0.0, "{r:#}");
    assert!(
        r["publish"]["server_cpu_us_per_publish"].is_number(),
        "{r:#}"
    );
    assert_eq!(u(&r, "/ack_latency/count"), 3000, "{r:#}");
    report_written(&dir, "publish");
    // Through the HTTP API, with subscribers checking delivery.
    let r = bench(&[
        "publish",
        "--url",
        &url,
        "--via",
        "http",
        "--api-url",
        &api,
        "--api-key",
        API_KEY,
        "--subscribers",
        "4",
        "--channels",
        "2",
        "--expect-zero-loss",
    ]);
    fanout_clean(&r);
    assert_eq!(r["publish"]["via"], "http", "{r:#}");
}

#[test]
fn publish_via_client_against_the_peer() {
    let peer = Server::peer();
    let r = bench(&[
        "publish",
        "--url",
        &peer.url("/connection/websocket"),
        "--via",
        "client",
        "--subscribers",
        "2",
        "--count",
        "2000",
    ]);
    fanout_clean(&r);
    assert_eq!(u(&r, "/publish/acked"), 2000, "{r:#}");
}

/// A `redis-server` on a free loopback port without persistence, killed on
/// drop (the Redis broker's tests need the real server: `apt install
/// redis-server`, which scripts/test.sh does).
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start() -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let dir = scratch("redis");
        std::fs::create_dir_all(&dir).unwrap();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "no", "--dir", dir.to_str().unwrap()])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (apt install redis-server)");
        let redis = Redis { child, port };
        wait_until(
            || http_like(port, b"PING\r\n").starts_with("+PONG"),
            "redis-server",
        );
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `request` to 127.0.0.1:`port` and returns what comes back first.
fn http_like(port: u16, request: &[u8]) -> String {
    use std::io::Write;
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    if s.write_all(request).is_err() {
        return String::new();
    }
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

fn wait_until(ok: impl Fn() -> bool, what: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} not ready within 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn fanout_across_two_nodes_over_redis_keeps_order() {
    let redis = Redis::start();
    let cfg = scratch("hist.toml");
    std::fs::write(
        &cfg,
        "[namespace.hist]\nhistory_size = 1000\nhistory_ttl = 300\n",
    )
    .unwrap();
    let url = redis.url();
    let node = |name: &str| {
        Server::ringcast_serve_with(&[
            "--config",
            cfg.to_str().unwrap(),
            "--broker",
            "redis",
            "--redis-address",
            &url,
            "--node-name",
            name,
        ])
    };
    let (a, b) = (node("a"), node("b"));
    for n in [&a, &b] {
        let port = n.ports[1];
        wait_until(
            || {
                http_like(port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                    .starts_with("HTTP/1.1 200")
            },
            "node health",
        );
    }
    let sub_url = b.url("/connection/websocket");
    let tcp = format!("127.0.0.1:{}", a.ports[2]);
    // The publisher on node A, the subscribers on node B: every delivery
    // crosses Redis. Many publications in flight must keep each channel's
    // order (one pipeline per link at a time).
    for (prefix, mode) in [
        ("hist:c", "--max"),
        ("plain", "--max"),
        ("hist:r", "--rate"),
    ] {
        let mut args = vec![
            "fanout",
            "--url",
            &sub_url,
            "--publisher",
            "tcp",
            "--publisher-addr",
            &tcp,
        ];
        args.extend([
            "--api-key",
            API_KEY,
            "--channel-prefix",
            prefix,
            "--channels",
            "10",
        ]);
        if mode == "--max" {
            args.extend(["--max", "--in-flight", "1024"]);
        } else {
            args.extend(["--rate", "500"]);
        }
        let r = bench(&args);
        fanout_clean(&r);
    }
}
