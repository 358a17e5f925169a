//! `ringcast-bench`: load generator for ringcast and for peers speaking the
//! same protocols. Scenarios: `hold` (idle connections, memory per
//! connection), `echo` (round trips), `fanout` (publish → subscribers),
//! `publish` (publisher ingest), `storm` (everyone dropped and recovering).

mod centrifuge;
mod client;
mod net;
mod pace;
mod procstat;
mod protobuf;
mod publish;
mod report;
mod run;
mod scenario;
mod scrape;
mod stats;
mod transport;
mod worker;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};

use crate::net::{Spread, Target, FD_RESERVE};
use crate::pace::Pace;
use crate::publish::http::Api;
use crate::publish::{PublishConfig, PublisherKind};
use crate::run::{ControlOpts, Layout};
use crate::scenario::echo::EchoConfig;
use crate::scenario::fanout::FanoutConfig;
use crate::scenario::hold::HoldConfig;
use crate::scenario::pubsub::PublisherLoad;
use crate::scenario::storm::{DropKind, StormConfig};
use crate::scenario::{Plan, Protocol, Scenario};
use crate::transport::Transport;

/// Exit code when `--expect-zero-loss` was given and a publication was lost.
const EXIT_LOST: u8 = 3;

#[derive(Debug, Parser)]
#[command(
    name = "ringcast-bench",
    version,
    about = "Load generator for ringcast (and peers speaking its protocols)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Open N connections and hold them idle: setup time, errors, server RSS per connection.
    Hold(HoldArgs),
    /// Round trips against an echo server: messages/s, latency, server CPU per message.
    Echo(EchoArgs),
    /// Publishers → channels → subscribers: deliveries/s, latency, loss, order.
    Fanout(FanoutArgs),
    /// Publisher ingest: acknowledged publishes/s, ack latency, server CPU per publish.
    Publish(PublishArgs),
    /// Reconnect storm: subscribers with recovery dropped at once while publishing.
    Storm(StormArgs),
}

#[derive(Debug, Args)]
struct HoldArgs {
    /// Server to load (ws://host:port/path). With `--protocol raw`, `{i}`
    /// in the path is replaced by the connection's index (a path of its
    /// own per connection: `ws://127.0.0.1:7001/c{i}` for ws2api).
    #[arg(long, default_value = "ws://127.0.0.1:8000/connection/websocket")]
    url: String,
    /// Connections to open.
    #[arg(short = 'n', long = "conns", default_value_t = 1000)]
    n: usize,
    /// What a connection does after the upgrade.
    #[arg(long, value_enum, default_value_t = Protocol::Centrifuge)]
    protocol: Protocol,
    /// Centrifuge: channels subscribed round-robin, one per connection (0: none).
    #[arg(long, default_value_t = 1)]
    channels: usize,
    /// Centrifuge: subscriptions per connection: connection i subscribes to
    /// channels i, i+1, … (mod --channels), at most --channels of them.
    #[arg(long, default_value_t = 1)]
    subs_per_conn: usize,
    /// With --server-pid: first open this many connections the same way,
    /// close them, and wait until the server's descriptor count is back
    /// where it was, then take the "before" RSS sample. The figure per
    /// connection is then what one more costs, without the code and
    /// one-time structures the first connection's path brings in (~0.6 MB
    /// on ringcast, ~40 B per connection at 15,000). 0: none.
    #[arg(long, default_value_t = 64)]
    warmup: usize,
    #[command(flatten)]
    transport: TransportArg,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Args)]
struct EchoArgs {
    /// Echo server to load (ws://host:port/path); `{i}` in the path is
    /// replaced by the connection's index (ws2api: `ws://HOST:PORT/c{i}`
    /// with `--text`).
    #[arg(long, default_value = "ws://127.0.0.1:9002/")]
    url: String,
    /// Connections.
    #[arg(short = 'c', long = "conns", default_value_t = 100)]
    conns: usize,
    /// Messages in flight per connection.
    #[arg(short = 'w', long = "in-flight", default_value_t = 16)]
    in_flight: usize,
    /// Payload bytes per message.
    #[arg(short = 's', long, default_value_t = 100)]
    size: usize,
    /// Send text frames (default: binary).
    #[arg(long)]
    text: bool,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Args)]
struct FanoutArgs {
    /// Server to load (ws://host:port/path): subscribers, and client-protocol publishers.
    #[arg(long, default_value = "ws://127.0.0.1:8000/connection/websocket")]
    url: String,
    /// Subscriber connections; subscriber i subscribes to channel i mod --channels.
    #[arg(long, default_value_t = 1000)]
    subscribers: usize,
    /// Channels (`<prefix>-0` …).
    #[arg(long, default_value_t = 10)]
    channels: usize,
    /// Publisher connections; each publishes round-robin to its channels.
    #[arg(long, default_value_t = 1)]
    publishers: usize,
    /// Publications per second, total over all publishers.
    #[arg(long, default_value_t = 1000.0, conflicts_with = "max")]
    rate: f64,
    /// Publish as fast as acknowledgements return (closed loop).
    #[arg(long)]
    max: bool,
    /// How --rate is spread in time: `even` (sub-millisecond spacing, the
    /// publishers offset in phase) or `burst` (all that is due, every 1 ms).
    #[arg(long, value_enum, default_value_t = Pace::Even)]
    pace: Pace,
    /// Unacknowledged publications per publisher (default: 32 with --max, 1000 with --rate).
    #[arg(long)]
    in_flight: Option<usize>,
    /// Bytes of each publication's data JSON.
    #[arg(long, default_value_t = 128)]
    size: usize,
    /// Keep the kernel's receive timestamp of each read (SO_TIMESTAMPNS)
    /// and split the latency into publish → subscriber's socket (the server
    /// and loopback) and socket → read (the bench's own queueing).
    #[arg(long)]
    rx_timestamps: bool,
    /// Subscribers ask for fossil deltas (`delta: "fossil"`; the channels'
    /// namespace must allow them) and decode each publication, as the SDKs
    /// do; the report gives the push bytes per delivery.
    #[arg(long)]
    delta: bool,
    /// How publications reach the server.
    #[arg(long, value_enum, default_value_t = PublisherKind::Client)]
    publisher: PublisherKind,
    #[command(flatten)]
    endpoints: Endpoints,
    #[command(flatten)]
    drain: Drain,
    #[command(flatten)]
    transport: TransportArg,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Args)]
struct PublishArgs {
    /// Server to load (ws://host:port/path): subscribers, and `--via client` publishers.
    #[arg(long, default_value = "ws://127.0.0.1:8000/connection/websocket")]
    url: String,
    /// How publications reach the server.
    #[arg(long, value_enum, default_value_t = PublisherKind::Tcp)]
    via: PublisherKind,
    /// Publisher connections.
    #[arg(long, default_value_t = 1)]
    publishers: usize,
    /// Unacknowledged publications per publisher (the window).
    #[arg(short = 'w', long, default_value_t = 256)]
    in_flight: usize,
    /// Bytes of each publication's data JSON.
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// Publications in total; the run ends when they are acknowledged (or
    /// at -d, which then defaults to 60 s).
    #[arg(long)]
    count: Option<u64>,
    /// Publish at this total rate instead of as fast as acknowledged.
    #[arg(long)]
    rate: Option<f64>,
    /// Subscribers that check delivery (0: none).
    #[arg(long, default_value_t = 0)]
    subscribers: usize,
    /// Channels, published round-robin.
    #[arg(long, default_value_t = 1)]
    channels: usize,
    #[command(flatten)]
    endpoints: Endpoints,
    #[command(flatten)]
    drain: Drain,
    #[command(flatten)]
    transport: TransportArg,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Args)]
struct StormArgs {
    /// Server to load (ws://host:port/path).
    #[arg(long, default_value = "ws://127.0.0.1:8000/connection/websocket")]
    url: String,
    /// Subscriber connections; connection i subscribes to channel i mod --channels.
    #[arg(short = 'n', long = "conns", default_value_t = 1000)]
    conns: usize,
    /// Channels (`<prefix>-0` …; the prefix defaults to `storm:bench`, a
    /// namespace the server keeps history for).
    #[arg(long, default_value_t = 10)]
    channels: usize,
    /// Publisher connections.
    #[arg(long, default_value_t = 1)]
    publishers: usize,
    /// Publications per second, total, for the whole run.
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// How --rate is spread in time.
    #[arg(long, value_enum, default_value_t = Pace::Even)]
    pace: Pace,
    /// Unacknowledged publications per publisher.
    #[arg(long, default_value_t = 1000)]
    in_flight: usize,
    /// Bytes of each publication's data JSON.
    #[arg(long, default_value_t = 128)]
    size: usize,
    /// How publications reach the server (`client` cannot be used with
    /// `--drop api`: it would drop the publishers too).
    #[arg(long, value_enum, default_value_t = PublisherKind::Http)]
    publisher: PublisherKind,
    /// How every connection is dropped: `api` (server API `disconnect`,
    /// one call) or `client` (the bench resets its sockets; any server).
    #[arg(long = "drop", value_enum, default_value_t = DropKind::Api)]
    drop_kind: DropKind,
    /// `--drop api`: whose connections ("": every anonymous one).
    #[arg(long, default_value = "")]
    drop_user: String,
    /// `--drop api`: close code asked for (3000–3499, reconnect advised).
    #[arg(long, default_value_t = 3011)]
    drop_code: u16,
    /// Seconds from the window's start to the first drop.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Drop rounds.
    #[arg(long, default_value_t = 1)]
    drops: usize,
    /// Seconds between drop rounds.
    #[arg(long, default_value_t = 3.0)]
    drop_every: f64,
    /// Shortest reconnect delay, seconds (each connection draws one in
    /// [min, max]; after a failed attempt in [max/2, max]).
    #[arg(long, default_value_t = 0.1)]
    reconnect_min: f64,
    /// Longest reconnect delay, seconds.
    #[arg(long, default_value_t = 1.0)]
    reconnect_max: f64,
    /// Resubscribe without `recover` (what is lost without recovery).
    #[arg(long)]
    no_recover: bool,
    #[command(flatten)]
    endpoints: Endpoints,
    #[command(flatten)]
    drain: Drain,
    #[command(flatten)]
    transport: TransportArg,
    #[command(flatten)]
    common: Common,
}

/// How the Centrifugo connections (held, subscribers) reach the server.
#[derive(Debug, Args)]
struct TransportArg {
    /// `websocket` at --url; `http_stream` or `sse` at the same host and
    /// port, /connection/http_stream or /connection/sse (after the prefix
    /// --url has before /connection/websocket), later commands (pongs) by
    /// POST /emulation. Publishers stay on WebSocket.
    #[arg(long = "transport", value_enum, default_value_t = Transport::WebSocket)]
    kind: Transport,
}

/// Where the server API and the TCP publisher port are.
#[derive(Debug, Args)]
struct Endpoints {
    /// Server API base URL (`http` publishers, `--drop api`).
    #[arg(long, default_value = "http://127.0.0.1:9000/api")]
    api_url: String,
    /// TCP publisher address (`tcp` publishers).
    #[arg(long, default_value = "127.0.0.1:9001")]
    publisher_addr: String,
    /// API key for the server API and the TCP publisher port.
    #[arg(long, env = "RINGCAST_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
}

impl Endpoints {
    fn publish(&self, kind: PublisherKind) -> anyhow::Result<PublishConfig> {
        PublishConfig::new(
            kind,
            &self.api_url,
            &self.publisher_addr,
            self.api_key.clone(),
        )
    }
}

/// How long to wait for what is still in flight after the window.
#[derive(Debug, Args)]
struct Drain {
    /// After the window, wait until no delivery arrived for this many seconds.
    #[arg(long, default_value_t = 1.0)]
    quiet: f64,
    /// Longest wait for acknowledgements and deliveries after the window, seconds.
    #[arg(long, default_value_t = 10.0)]
    drain_max: f64,
}

impl Drain {
    /// (quiet, drain_max), capped for `--smoke`.
    fn secs(&self, smoke: bool) -> (f64, f64) {
        if smoke {
            (self.quiet.min(0.3), self.drain_max.min(3.0))
        } else {
            (self.quiet, self.drain_max)
        }
    }
}

#[derive(Debug, Args)]
struct Common {
    /// Seconds of the measured window [default: 10 (publish --count: 60);
    /// with --smoke 1 (storm 3), at most 5].
    #[arg(short = 'd', long)]
    duration: Option<f64>,
    /// Server process to sample: RSS before/after setup, CPU during the window.
    #[arg(long)]
    server_pid: Option<u32>,
    /// The server's /metrics (ringcast: http://ADMIN/metrics, the address
    /// in its ready line): its delivery-latency histogram is read after
    /// setup and after the drain, and the report gives the server-side
    /// quantiles of the difference next to the bench's own.
    #[arg(long)]
    metrics_url: Option<String>,
    /// Print the result as JSON on stdout (the table then goes to stderr).
    #[arg(long)]
    json: bool,
    /// Worker threads per process (tokio current_thread runtime each).
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Pin workers to these cores, round-robin: `1`, `1,2`, `2-3`.
    #[arg(long)]
    cpu: Option<String>,
    /// Run the workers under SCHED_FIFO at this priority, 1-99 (needs
    /// CAP_SYS_NICE or RLIMIT_RTPRIO): on a shared host, keeps other
    /// processes' slices out of a latency run (docs/operations.md).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=99))]
    realtime_priority: Option<u8>,
    /// Processes (default: as many as the fd limit requires).
    #[arg(long)]
    procs: Option<usize>,
    /// Connections per local source address (127.0.0.2, .3, … for loopback targets).
    #[arg(long, default_value_t = 20_000)]
    conns_per_addr: usize,
    /// First local source address.
    #[arg(long, default_value = "127.0.0.2")]
    source_base: Ipv4Addr,
    /// Let the kernel pick source addresses.
    #[arg(long)]
    no_spread: bool,
    /// Connection attempts in flight per process.
    #[arg(long, default_value_t = 256)]
    connect_concurrency: usize,
    /// Seconds one connect (TCP + upgrade + login) may take.
    #[arg(long, default_value_t = 10.0)]
    connect_timeout: f64,
    /// Seconds between setup and the server RSS sample.
    #[arg(long, default_value_t = 1.0)]
    settle: f64,
    /// Tiny, quick run (< 10 s) for tests: caps counts and durations.
    #[arg(long)]
    smoke: bool,
    /// No progress bar.
    #[arg(long)]
    no_progress: bool,
    /// Centrifugo connect token.
    #[arg(long)]
    token: Option<String>,
    /// Channels are named `<prefix>-<n>` [default: bench; storm: storm:bench].
    #[arg(long)]
    channel_prefix: Option<String>,
    /// Also write DIR/report.md (table, parameters, command, machine) and
    /// SVG charts (latency percentiles, throughput per second).
    #[arg(long, value_name = "DIR")]
    report: Option<PathBuf>,
    /// Exit 3 when any publication was lost (fanout, publish, storm).
    #[arg(long)]
    expect_zero_loss: bool,
    /// Internal: run as child `i/n` of a multi-process run.
    #[arg(long, hide = true)]
    child: Option<String>,
}

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ringcast-bench: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn real_main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    let (scenario, url, transport, mut c) = match cli.cmd {
        Cmd::Hold(a) => hold_config(a)?,
        Cmd::Echo(a) => echo_config(a),
        Cmd::Fanout(a) => fanout_config(a)?,
        Cmd::Publish(a) => publish_config(a)?,
        Cmd::Storm(a) => storm_config(a)?,
    };
    let duration = match (c.duration, c.smoke) {
        (Some(d), false) => d,
        (Some(d), true) => d.min(5.0),
        (None, smoke) => match (&scenario, smoke) {
            (Scenario::Storm(_), true) => 3.0,
            (Scenario::Publish(p), true) if p.load.count.is_some() => 5.0,
            (_, true) => 1.0,
            (Scenario::Publish(p), false) if p.load.count.is_some() => 60.0,
            _ => 10.0,
        },
    };
    if let Scenario::Storm(s) = &scenario {
        if s.drops > 0 && s.warmup_s + (s.drops - 1) as f64 * s.drop_every_s >= duration {
            bail!(
                "the last drop ({} s + {} × {} s) must come before the window's end ({duration} s): \
                 raise -d or lower --warmup/--drops/--drop-every",
                s.warmup_s,
                s.drops - 1,
                s.drop_every_s
            );
        }
    }
    if c.smoke {
        c.settle = c.settle.min(0.1);
        c.connect_timeout = c.connect_timeout.min(5.0);
    }
    if !(duration > 0.0 && duration.is_finite()) {
        bail!("--duration must be positive");
    }
    let target = Target::parse(&url)?;
    let raw_ws = match &scenario {
        Scenario::Echo(_) => true,
        Scenario::Hold(h) => h.protocol == Protocol::Raw,
        _ => false,
    };
    if target.per_conn() && !raw_ws {
        bail!(
            "`{}` in --url is for echo and hold --protocol raw only",
            net::CONN_INDEX
        );
    }
    let spread = Spread::new(&target, c.source_base, c.conns_per_addr, c.no_spread)?;
    let channel_prefix = c.channel_prefix.clone().unwrap_or_else(|| {
        match scenario {
            Scenario::Storm(_) => "storm:bench",
            _ => "bench",
        }
        .to_string()
    });
    let plan = Plan {
        scenario,
        target,
        url,
        transport,
        spread,
        duration: Duration::from_secs_f64(duration),
        connect_timeout: Duration::from_secs_f64(c.connect_timeout.max(0.01)),
        token: c.token.clone(),
        channel_prefix,
    };
    let total = plan.share().total();
    plan.spread.check(total)?;

    let nofile = net::raise_nofile();
    let per_proc = nofile.saturating_sub(FD_RESERVE).max(1) as usize;
    let needed = total.div_ceil(per_proc).max(1);
    let procs = match c.procs {
        Some(p) if p >= needed => p,
        Some(p) => {
            if c.child.is_none() {
                eprintln!(
                    "note: {total} connections need {needed} processes at {nofile} fds each; \
                     using {needed}, not --procs {p}"
                );
            }
            needed
        }
        None => needed,
    };
    let layout = Layout {
        procs,
        workers: c.workers.max(1),
        cpus: match &c.cpu {
            Some(s) => parse_cpus(s)?,
            None => vec![],
        },
        connect_concurrency: c.connect_concurrency.max(1),
        realtime_priority: c.realtime_priority.unwrap_or(0),
    };
    if let Some(p) = c.realtime_priority {
        // Refused here, before any connection, rather than in every worker.
        std::thread::spawn(move || ringcast::sys::set_realtime(p))
            .join()
            .expect("realtime probe thread")
            .with_context(|| {
                format!("--realtime-priority {p} (SCHED_FIFO); needs CAP_SYS_NICE or ulimit -r {p}")
            })?;
    }
    let plan = Arc::new(plan);

    if let Some(child) = &c.child {
        let (i, n) = child
            .split_once('/')
            .and_then(|(i, n)| Some((i.parse().ok()?, n.parse().ok()?)))
            .context("--child wants i/n")?;
        run::child(plan, Layout { procs: 1, ..layout }, i, n)?;
        return Ok(ExitCode::SUCCESS);
    }

    let mut warmed = 0;
    if let Some(pid) = c.server_pid {
        if !procstat::alive(pid) {
            bail!("--server-pid {pid}: no such process");
        }
        if let Scenario::Hold(h) = &plan.scenario {
            if h.warmup > 0 {
                warmed = warm_up(&plan, &layout, pid, h)?;
            }
        }
    }
    let outcome = run::control(
        plan.clone(),
        layout,
        ControlOpts {
            server_pid: c.server_pid,
            metrics_url: c.metrics_url.clone(),
            settle: Duration::from_secs_f64(c.settle.max(0.0)),
            progress: !c.no_progress,
        },
    )?;
    let mut report = report::Report::build(&plan, outcome);
    if let Some(h) = report.hold.as_mut() {
        h.warmup_established = warmed;
    }
    if c.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        eprint!("{}", report.table());
    } else {
        print!("{}", report.table());
    }
    if let Some(dir) = &c.report {
        report::write_dir(dir, &report).with_context(|| format!("--report {}", dir.display()))?;
        eprintln!("report: {}", dir.join("report.md").display());
    }
    let lost = report.lost();
    Ok(if report.connections.established == 0 {
        ExitCode::from(1)
    } else if c.expect_zero_loss && lost > 0 {
        eprintln!("ringcast-bench: {lost} deliveries lost (--expect-zero-loss)");
        ExitCode::from(EXIT_LOST)
    } else {
        ExitCode::SUCCESS
    })
}

/// `hold --warmup`: `h.warmup` connections opened, held a moment and closed
/// by a run of their own in this process, then the server's descriptors
/// polled back to their count before it (at most 10 s). Returns how many
/// were established.
fn warm_up(plan: &Plan, layout: &Layout, pid: u32, h: &HoldConfig) -> anyhow::Result<u64> {
    let fds = settled_fds(pid)?;
    let mut warm = plan.clone();
    warm.scenario = Scenario::Hold(HoldConfig {
        conns: h.warmup,
        warmup: 0,
        ..h.clone()
    });
    warm.duration = Duration::from_millis(200);
    let o = run::control(
        Arc::new(warm),
        Layout {
            procs: 1,
            ..layout.clone()
        },
        ControlOpts {
            server_pid: None,
            metrics_url: None,
            settle: Duration::ZERO,
            progress: false,
        },
    )?;
    if o.tally.established == 0 {
        bail!("warm-up: none of {} connections was established", h.warmup);
    }
    let until = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let now = procstat::fd_count(pid)?;
        if now <= fds {
            return Ok(o.tally.established);
        }
        if std::time::Instant::now() >= until {
            eprintln!(
                "note: after the warm-up the server still has {now} descriptors open, {fds} before it \
                 (waited 10 s): its RSS before the run may count some warm-up connections"
            );
            return Ok(o.tally.established);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The server's descriptor count once it stops moving (two equal reads
/// 50 ms apart, for at most 1 s): a connection someone made just before,
/// to see the port open, is closed first.
fn settled_fds(pid: u32) -> anyhow::Result<usize> {
    let mut last = procstat::fd_count(pid)?;
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(50));
        let now = procstat::fd_count(pid)?;
        if now == last {
            break;
        }
        last = now;
    }
    Ok(last)
}

/// A scenario's command line, checked and capped: the scenario, `--url`,
/// the Centrifugo connections' transport and the common options.
type Parsed = (Scenario, String, Transport, Common);

fn hold_config(a: HoldArgs) -> anyhow::Result<Parsed> {
    if a.protocol == Protocol::Raw && a.transport.kind != Transport::WebSocket {
        bail!("--protocol raw is a WebSocket upgrade only: it needs --transport websocket");
    }
    let n = if a.common.smoke { a.n.min(20) } else { a.n };
    let cfg = HoldConfig {
        conns: n,
        protocol: a.protocol,
        channels: a.channels,
        subs_per_conn: a.subs_per_conn.clamp(1, a.channels.max(1)),
        // Only where the server's memory is sampled.
        warmup: match (a.common.server_pid, a.common.smoke) {
            (None, _) => 0,
            (Some(_), true) => a.warmup.min(4),
            (Some(_), false) => a.warmup,
        },
    };
    Ok((Scenario::Hold(cfg), a.url, a.transport.kind, a.common))
}

fn echo_config(a: EchoArgs) -> Parsed {
    let smoke = a.common.smoke;
    let cfg = EchoConfig {
        conns: if smoke { a.conns.min(4) } else { a.conns },
        in_flight: if smoke {
            a.in_flight.clamp(1, 4)
        } else {
            a.in_flight.max(1)
        },
        size: a.size,
        text: a.text,
    };
    (Scenario::Echo(cfg), a.url, Transport::WebSocket, a.common)
}

fn fanout_config(a: FanoutArgs) -> anyhow::Result<Parsed> {
    let smoke = a.common.smoke;
    let rate = (!a.max).then_some(a.rate);
    let in_flight = a.in_flight.unwrap_or(if a.max { 32 } else { 1000 });
    let load = publisher_load(
        (a.channels, a.publishers, rate, a.pace),
        (in_flight, a.size, None),
        a.endpoints.publish(a.publisher)?,
        &a.drain,
        smoke,
    )?;
    let mut cfg = subscribers_for(a.subscribers, load, &a.drain, smoke);
    cfg.rx_timestamps = a.rx_timestamps;
    cfg.delta = a.delta;
    Ok((Scenario::Fanout(cfg), a.url, a.transport.kind, a.common))
}

fn publish_config(a: PublishArgs) -> anyhow::Result<Parsed> {
    let smoke = a.common.smoke;
    let count = match (a.count, smoke) {
        (Some(0), _) => bail!("--count must be at least 1"),
        (Some(n), true) => Some(n.min(5_000)),
        (n, _) => n,
    };
    let publish = a.endpoints.publish(a.via)?;
    let shape = (a.channels, a.publishers, a.rate, Pace::Even);
    let load = publisher_load(
        shape,
        (a.in_flight, a.size, count),
        publish,
        &a.drain,
        smoke,
    )?;
    let cfg = subscribers_for(a.subscribers, load, &a.drain, smoke);
    Ok((Scenario::Publish(cfg), a.url, a.transport.kind, a.common))
}

fn storm_config(a: StormArgs) -> anyhow::Result<Parsed> {
    let smoke = a.common.smoke;
    if a.drop_kind == DropKind::Api && a.publisher == PublisherKind::Client {
        bail!(
            "--drop api would disconnect the client-protocol publishers too: \
             use --publisher http or tcp, or --drop client"
        );
    }
    if !(3000..=3499).contains(&a.drop_code) {
        bail!(
            "--drop-code {} is not a reconnect code (3000–3499)",
            a.drop_code
        );
    }
    let secs = [a.warmup, a.drop_every, a.reconnect_min, a.reconnect_max];
    if secs.iter().any(|s| !(s.is_finite() && *s >= 0.0)) || a.reconnect_max < a.reconnect_min {
        bail!("--warmup, --drop-every, --reconnect-min ≤ --reconnect-max must be ≥ 0");
    }
    let load = publisher_load(
        (a.channels, a.publishers, Some(a.rate), a.pace),
        (a.in_flight, a.size, None),
        a.endpoints.publish(a.publisher)?,
        &a.drain,
        smoke,
    )?;
    let (quiet_s, _) = a.drain.secs(smoke);
    let cap = |v: f64, max: f64| if smoke { v.min(max) } else { v };
    let api = match a.drop_kind {
        DropKind::Api => Some(Api::new(&a.endpoints.api_url, a.endpoints.api_key.clone())?),
        DropKind::Client => None,
    };
    let cfg = StormConfig {
        conns: if smoke { a.conns.min(20) } else { a.conns },
        load,
        drop: a.drop_kind,
        api,
        drop_user: a.drop_user,
        drop_code: a.drop_code,
        warmup_s: cap(a.warmup, 0.5),
        drops: if smoke { a.drops.min(2) } else { a.drops },
        drop_every_s: cap(a.drop_every, 1.0),
        reconnect_min_s: cap(a.reconnect_min, 0.05),
        reconnect_max_s: cap(a.reconnect_max, 0.3),
        recover: !a.no_recover,
        quiet_s,
    };
    Ok((Scenario::Storm(cfg), a.url, a.transport.kind, a.common))
}

/// Fanout and publish: `subscribers` (capped for `--smoke`) on `load`.
fn subscribers_for(
    subscribers: usize,
    load: PublisherLoad,
    drain: &Drain,
    smoke: bool,
) -> FanoutConfig {
    FanoutConfig {
        subscribers: if smoke {
            subscribers.min(8)
        } else {
            subscribers
        },
        load,
        quiet_s: drain.secs(smoke).0,
        rx_timestamps: false,
        delta: false,
    }
}

/// The publishers' part of fanout, publish and storm, checked and capped
/// for `--smoke`: (channels, publishers, rate, pace), (in flight, size,
/// count).
fn publisher_load(
    (channels, publishers, rate, pace): (usize, usize, Option<f64>, Pace),
    (in_flight, size, count): (usize, usize, Option<u64>),
    publish: PublishConfig,
    drain: &Drain,
    smoke: bool,
) -> anyhow::Result<PublisherLoad> {
    if channels == 0 || publishers == 0 {
        bail!("--channels and --publishers must be at least 1");
    }
    if let Some(r) = rate {
        if !(r > 0.0 && r.is_finite()) {
            bail!("--rate must be positive");
        }
    }
    let in_flight = in_flight.max(1);
    let (_, drain_max_s) = drain.secs(smoke);
    Ok(PublisherLoad {
        channels: if smoke { channels.min(2) } else { channels },
        publishers: if smoke { publishers.min(2) } else { publishers },
        rate: if smoke {
            rate.map(|r| r.min(200.0))
        } else {
            rate
        },
        pace,
        in_flight: if smoke { in_flight.min(8) } else { in_flight },
        size,
        publish,
        count,
        drain_max_s,
    })
}

/// `1`, `1,3`, `0-3`, `0-1,4`.
fn parse_cpus(s: &str) -> anyhow::Result<Vec<usize>> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.parse()?, b.parse()?);
                if a > b {
                    bail!("bad cpu range {part:?}");
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().with_context(|| format!("bad cpu {part:?}"))?),
        }
    }
    if out.is_empty() {
        bail!("--cpu {s:?} names no core");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpus("1").unwrap(), vec![1]);
        assert_eq!(parse_cpus("0-2,5").unwrap(), vec![0, 1, 2, 5]);
        assert!(parse_cpus("3-1").is_err());
        assert!(parse_cpus("").is_err());
    }
}
