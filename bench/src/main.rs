//! `ringcast-bench`: load generator for ringcast and for peers speaking the
//! same protocols. Scenarios: `hold` (idle connections, memory per
//! connection), `echo` (round trips), `fanout` (publish → subscribers).

mod centrifuge;
mod client;
mod net;
mod pace;
mod procstat;
mod publish;
mod report;
mod run;
mod scenario;
mod stats;
mod worker;

use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};

use crate::net::{Spread, Target, FD_RESERVE};
use crate::pace::Pace;
use crate::publish::{PublishConfig, PublisherKind};
use crate::run::{ControlOpts, Layout};
use crate::scenario::echo::EchoConfig;
use crate::scenario::fanout::FanoutConfig;
use crate::scenario::hold::HoldConfig;
use crate::scenario::{Plan, Protocol, Scenario};

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
}

#[derive(Debug, Args)]
struct HoldArgs {
    /// Server to load (ws://host:port/path).
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
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Args)]
struct EchoArgs {
    /// Echo server to load (ws://host:port/path).
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
    /// How publications reach the server.
    #[arg(long, value_enum, default_value_t = PublisherKind::Client)]
    publisher: PublisherKind,
    /// Server API base URL (`--publisher http`).
    #[arg(long, default_value = "http://127.0.0.1:9000/api")]
    api_url: String,
    /// TCP publisher address (`--publisher tcp`).
    #[arg(long, default_value = "127.0.0.1:9001")]
    publisher_addr: String,
    /// API key for the server API and the TCP publisher port.
    #[arg(long, env = "RINGCAST_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// After the window, wait until no delivery arrived for this many seconds.
    #[arg(long, default_value_t = 1.0)]
    quiet: f64,
    /// Longest wait for acknowledgements and deliveries after the window, seconds.
    #[arg(long, default_value_t = 10.0)]
    drain_max: f64,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Args)]
struct Common {
    /// Seconds of the measured window [default: 10; with --smoke 1, at most 5].
    #[arg(short = 'd', long)]
    duration: Option<f64>,
    /// Server process to sample: RSS before/after setup, CPU during the window.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Print the result as JSON on stdout (the table then goes to stderr).
    #[arg(long)]
    json: bool,
    /// Worker threads per process (tokio current_thread runtime each).
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Pin workers to these cores, round-robin: `1`, `1,2`, `2-3`.
    #[arg(long)]
    cpu: Option<String>,
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
    /// Channels are named `<prefix>-<n>`.
    #[arg(long, default_value = "bench")]
    channel_prefix: String,
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
    let (scenario, url, mut c) = match cli.cmd {
        Cmd::Hold(a) => hold_config(a),
        Cmd::Echo(a) => echo_config(a),
        Cmd::Fanout(a) => fanout_config(a)?,
    };
    let duration = match (c.duration, c.smoke) {
        (None, false) => 10.0,
        (None, true) => 1.0,
        (Some(d), false) => d,
        (Some(d), true) => d.min(5.0),
    };
    if c.smoke {
        c.settle = c.settle.min(0.1);
        c.connect_timeout = c.connect_timeout.min(5.0);
    }
    if !(duration > 0.0 && duration.is_finite()) {
        bail!("--duration must be positive");
    }
    let target = Target::parse(&url)?;
    let spread = Spread::new(&target, c.source_base, c.conns_per_addr, c.no_spread)?;
    let plan = Plan {
        scenario,
        target,
        url,
        spread,
        duration: Duration::from_secs_f64(duration),
        connect_timeout: Duration::from_secs_f64(c.connect_timeout.max(0.01)),
        token: c.token.clone(),
        channel_prefix: c.channel_prefix.clone(),
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
    };
    let plan = Arc::new(plan);

    if let Some(child) = &c.child {
        let (i, n) = child
            .split_once('/')
            .and_then(|(i, n)| Some((i.parse().ok()?, n.parse().ok()?)))
            .context("--child wants i/n")?;
        run::child(plan, Layout { procs: 1, ..layout }, i, n)?;
        return Ok(ExitCode::SUCCESS);
    }

    if let Some(pid) = c.server_pid {
        if !procstat::alive(pid) {
            bail!("--server-pid {pid}: no such process");
        }
    }
    let outcome = run::control(
        plan.clone(),
        layout,
        ControlOpts {
            server_pid: c.server_pid,
            settle: Duration::from_secs_f64(c.settle.max(0.0)),
            progress: !c.no_progress,
        },
    )?;
    let report = report::Report::build(&plan, outcome);
    if c.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        eprint!("{}", report.table());
    } else {
        print!("{}", report.table());
    }
    Ok(if report.connections.established == 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn hold_config(a: HoldArgs) -> (Scenario, String, Common) {
    let n = if a.common.smoke { a.n.min(20) } else { a.n };
    let cfg = HoldConfig {
        conns: n,
        protocol: a.protocol,
        channels: a.channels,
    };
    (Scenario::Hold(cfg), a.url, a.common)
}

fn echo_config(a: EchoArgs) -> (Scenario, String, Common) {
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
    (Scenario::Echo(cfg), a.url, a.common)
}

fn fanout_config(a: FanoutArgs) -> anyhow::Result<(Scenario, String, Common)> {
    let smoke = a.common.smoke;
    if a.channels == 0 || a.publishers == 0 {
        bail!("--channels and --publishers must be at least 1");
    }
    let rate_ok = a.rate > 0.0 && a.rate.is_finite();
    if !a.max && !rate_ok {
        bail!("--rate must be positive (or use --max)");
    }
    let in_flight = a.in_flight.unwrap_or(if a.max { 32 } else { 1000 }).max(1);
    let cfg = FanoutConfig {
        subscribers: if smoke {
            a.subscribers.min(8)
        } else {
            a.subscribers
        },
        channels: if smoke { a.channels.min(2) } else { a.channels },
        publishers: if smoke {
            a.publishers.min(2)
        } else {
            a.publishers
        },
        rate: match (a.max, smoke) {
            (true, _) => None,
            (false, true) => Some(a.rate.min(200.0)),
            (false, false) => Some(a.rate),
        },
        pace: a.pace,
        in_flight: if smoke { in_flight.min(8) } else { in_flight },
        size: a.size,
        publish: PublishConfig::new(a.publisher, &a.api_url, &a.publisher_addr, a.api_key)?,
        quiet_s: if smoke { a.quiet.min(0.3) } else { a.quiet },
        drain_max_s: if smoke {
            a.drain_max.min(3.0)
        } else {
            a.drain_max
        },
    };
    Ok((Scenario::Fanout(cfg), a.url, a.common))
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
