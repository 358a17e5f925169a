//! Output: live progress on stderr (indicatif, hidden when stderr is not a
//! terminal), then the result as a human table or `--json`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::run::{Layout, Outcome};
use crate::scenario::{Plan, Scenario};
use crate::stats::Summary;
use crate::worker::LiveSnap;

pub struct Progress {
    bar: ProgressBar,
    scenario: &'static str,
    total: u64,
}

impl Progress {
    pub fn new(enabled: bool, scenario: &'static str, total: u64) -> Progress {
        let target = if enabled && std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(total), target);
        bar.set_style(
            ProgressStyle::with_template("{prefix:>8} [{bar:30}] {pos}/{len} {msg}")
                .expect("template")
                .progress_chars("=> "),
        );
        bar.set_prefix("connect");
        Progress {
            bar,
            scenario,
            total,
        }
    }

    pub fn setup(&self, s: LiveSnap) {
        self.bar.set_position(s.connected + s.failed);
        self.bar.set_message(format!("{} failed", s.failed));
    }

    pub fn run_phase(&self, d: Duration) {
        self.bar.set_length(d.as_millis() as u64);
        self.bar.set_position(0);
        self.bar.set_style(
            ProgressStyle::with_template("{prefix:>8} [{bar:30}] {elapsed} {msg}")
                .expect("template")
                .progress_chars("=> "),
        );
        self.bar.set_prefix(self.scenario);
    }

    pub fn run(&self, s: LiveSnap, elapsed: Duration) {
        self.bar.set_position(elapsed.as_millis() as u64);
        let secs = elapsed.as_secs_f64().max(1e-3);
        self.bar.set_message(format!(
            "{}/{} conns, sent {} recv {} ({:.0}/s)",
            s.connected,
            self.total,
            s.sent,
            s.received,
            s.received as f64 / secs
        ));
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub scenario: &'static str,
    pub url: String,
    pub config: serde_json::Value,
    pub layout: Layout,
    /// Length of the measured window.
    pub duration_s: f64,
    pub connections: Connections,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold: Option<HoldOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub echo: Option<EchoOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fanout: Option<FanoutOut>,
    /// Echo round trip, or publish → receive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency: Option<Summary>,
    /// Fanout: publish → receive latency per second of the run (second 0
    /// starts with the window; seconds past `duration_s` are the drain).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub latency_timeline: Vec<TimelinePoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerOut>,
    pub bench: BenchOut,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<HostOut>,
    pub protocol_errors: u64,
    pub errors: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize)]
pub struct Connections {
    pub attempted: u64,
    pub established: u64,
    pub errors: u64,
    pub disconnects: u64,
    /// First connect attempt to last connection set up.
    pub setup_s: f64,
    pub per_s: f64,
    pub connect_latency: Summary,
    /// Distinct local source addresses used (0: kernel's choice).
    pub source_addresses: usize,
}

#[derive(Debug, Serialize)]
pub struct HoldOut {
    pub held: u64,
    pub pings_answered: u64,
}

#[derive(Debug, Serialize)]
pub struct EchoOut {
    pub sent: u64,
    pub received: u64,
    pub msgs_per_s: f64,
    pub mismatched: u64,
}

#[derive(Debug, Serialize)]
pub struct FanoutOut {
    pub published: u64,
    /// Publications issued / window length (the offered rate).
    pub published_per_s: f64,
    pub acked: u64,
    /// Acknowledged publications / (last acknowledgement − window start).
    pub acked_per_s: f64,
    pub publish_errors: u64,
    pub rate_deficit: u64,
    pub expected: u64,
    pub delivered: u64,
    /// Deliveries / delivery span (first to last delivery received): the
    /// rate the server actually delivered at.
    pub delivered_per_s: f64,
    /// First to last delivery received, seconds.
    pub delivery_span_s: f64,
    /// Window-based: deliveries (including those drained after the
    /// window) / window length. Overstates a server that queues without
    /// bound; kept for comparison with older reports.
    pub delivered_per_window_s: f64,
    /// Last delivery − window end, seconds: how long deliveries went on
    /// after publishing stopped (a backlog drains; ≈ latency otherwise).
    pub drain_s: f64,
    pub lost: u64,
    pub duplicated: u64,
    pub out_of_order: u64,
    pub pings_answered: u64,
}

#[derive(Debug, Serialize)]
pub struct TimelinePoint {
    /// Seconds since the window's start (this point covers [s, s + 1)).
    pub s: usize,
    pub count: u64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
}

#[derive(Debug, Serialize)]
pub struct ServerOut {
    pub pid: u32,
    pub rss_before_bytes: u64,
    pub rss_established_bytes: u64,
    pub rss_end_bytes: u64,
    /// (established − before) / connections established.
    pub rss_per_conn_bytes: Option<f64>,
    /// Over the active period (window, plus the fanout drain).
    pub cpu_s: f64,
    /// Cores busy on average.
    pub cpu_util: f64,
    /// CPU per message (echo: per echo; fanout: per delivery).
    pub cpu_us_per_msg: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct BenchOut {
    pub cpu_s: f64,
    /// Cores busy on average.
    pub cpu_util: f64,
    /// `cpu_util` / worker threads: near 1.0 means the client may be the bottleneck.
    pub per_worker_util: f64,
}

/// The whole box during the active period: did anything else compete?
#[derive(Debug, Serialize)]
pub struct HostOut {
    pub cores: usize,
    /// Cores busy on average, everything on the host.
    pub busy_cores: f64,
    /// Cores busy with neither the bench nor the server: other load that
    /// disturbs the measurement. Without `--server-pid` the server's own
    /// CPU is counted here too.
    pub other_busy_cores: f64,
}

impl Report {
    pub fn build(plan: &Plan, o: Outcome) -> Report {
        let t = &o.tally;
        let window_s = (o.window.end_ns - o.window.start_ns) as f64 / 1e9;
        let active_s = o.active_s.max(1e-9);
        let setup_s = o.tally.setup_end_ns.saturating_sub(o.tally.setup_start_ns) as f64 / 1e9;
        let msgs = match &plan.scenario {
            Scenario::Hold(_) => None,
            Scenario::Echo(_) => Some(t.received),
            Scenario::Fanout(_) => Some(t.delivered),
        };
        let (mut hold, mut echo, mut fanout) = (None, None, None);
        match &plan.scenario {
            Scenario::Hold(_) => {
                hold = Some(HoldOut {
                    held: t.established.saturating_sub(t.disconnects),
                    pings_answered: t.pings,
                })
            }
            Scenario::Echo(_) => {
                echo = Some(EchoOut {
                    sent: t.sent,
                    received: t.received,
                    msgs_per_s: t.received as f64 / window_s,
                    mismatched: t.mismatched,
                })
            }
            Scenario::Fanout(_) => {
                let span = t.delivery_span.secs();
                let ack_s = t.ack_span.last_ns.saturating_sub(o.window.start_ns) as f64 / 1e9;
                fanout = Some(FanoutOut {
                    published: t.published,
                    published_per_s: t.published as f64 / window_s,
                    acked: t.publish_acked,
                    acked_per_s: if ack_s > 0.0 {
                        t.publish_acked as f64 / ack_s
                    } else {
                        0.0
                    },
                    publish_errors: t.publish_errors,
                    rate_deficit: t.rate_deficit,
                    expected: t.expected_deliveries(),
                    delivered: t.delivered,
                    delivered_per_s: if span > 0.0 {
                        t.delivered as f64 / span
                    } else {
                        0.0
                    },
                    delivery_span_s: span,
                    delivered_per_window_s: t.delivered as f64 / window_s,
                    drain_s: if t.delivery_span.is_empty() {
                        0.0
                    } else {
                        (t.delivery_span.last_ns as f64 - o.window.end_ns as f64) / 1e9
                    },
                    lost: t.lost(),
                    duplicated: t.duplicates,
                    out_of_order: t.out_of_order,
                    pings_answered: t.pings,
                })
            }
        }
        let server = match (o.server_before, o.server_established, o.server_end) {
            (Some(b), Some(e), Some(end)) => {
                let cpu_s = end.cpu_s - e.cpu_s;
                Some(ServerOut {
                    pid: o.server_pid.unwrap_or_default(),
                    rss_before_bytes: b.rss_bytes,
                    rss_established_bytes: e.rss_bytes,
                    rss_end_bytes: end.rss_bytes,
                    rss_per_conn_bytes: (t.established > 0)
                        .then(|| (e.rss_bytes as f64 - b.rss_bytes as f64) / t.established as f64),
                    cpu_s,
                    cpu_util: cpu_s / active_s,
                    cpu_us_per_msg: msgs.filter(|m| *m > 0).map(|m| cpu_s * 1e6 / m as f64),
                })
            }
            _ => None,
        };
        let host = o.host_busy_s.map(|busy| {
            let server_cpu = server.as_ref().map_or(0.0, |s| s.cpu_s);
            HostOut {
                cores: o.host_cores,
                busy_cores: busy / active_s,
                other_busy_cores: ((busy - server_cpu - o.bench_cpu_s) / active_s).max(0.0),
            }
        });
        let workers = (o.layout.procs * o.layout.workers).max(1) as f64;
        let bench_util = o.bench_cpu_s / active_s;
        Report {
            scenario: plan.scenario.name(),
            url: plan.url.clone(),
            config: serde_json::to_value(&plan.scenario).unwrap_or_default(),
            duration_s: window_s,
            connections: Connections {
                attempted: t.attempted,
                established: t.established,
                errors: t.connect_errors,
                disconnects: t.disconnects,
                setup_s,
                per_s: if setup_s > 0.0 {
                    t.established as f64 / setup_s
                } else {
                    0.0
                },
                connect_latency: t.connect_latency.summary(),
                source_addresses: plan.spread.addresses(t.attempted as usize),
            },
            hold,
            echo,
            fanout,
            latency: msgs.map(|_| t.latency.summary()),
            latency_timeline: t
                .latency_by_s
                .iter()
                .enumerate()
                .map(|(s, h)| (s, h.summary()))
                .filter(|(_, l)| l.count > 0)
                .map(|(s, l)| TimelinePoint {
                    s,
                    count: l.count,
                    p50_us: l.p50_us,
                    p99_us: l.p99_us,
                    max_us: l.max_us,
                })
                .collect(),
            server,
            bench: BenchOut {
                cpu_s: o.bench_cpu_s,
                cpu_util: bench_util,
                per_worker_util: bench_util / workers,
            },
            host,
            protocol_errors: t.protocol_errors,
            errors: t.errors.clone(),
            layout: o.layout,
        }
    }

    pub fn table(&self) -> String {
        let mut s = String::new();
        let mut row = |k: &str, v: String| {
            let _ = writeln!(s, "  {k:<26} {v}");
        };
        let c = &self.connections;
        row("scenario", format!("{} {}", self.scenario, self.url));
        row(
            "layout",
            format!(
                "{} proc × {} worker(s), cpus {:?}",
                self.layout.procs, self.layout.workers, self.layout.cpus
            ),
        );
        row("window", format!("{:.2} s", self.duration_s));
        row(
            "connections",
            format!(
                "{}/{} established, {} errors, {} dropped",
                c.established, c.attempted, c.errors, c.disconnects
            ),
        );
        row(
            "setup",
            format!(
                "{:.2} s ({:.0} conn/s, {} source addrs)",
                c.setup_s, c.per_s, c.source_addresses
            ),
        );
        row("connect latency", lat(&c.connect_latency));
        if let Some(h) = &self.hold {
            row(
                "held",
                format!("{} ({} pings answered)", h.held, h.pings_answered),
            );
        }
        if let Some(e) = &self.echo {
            row(
                "echo",
                format!(
                    "{} msgs/s ({} sent, {} received, {} mismatched)",
                    si(e.msgs_per_s),
                    e.sent,
                    e.received,
                    e.mismatched
                ),
            );
        }
        if let Some(f) = &self.fanout {
            row(
                "published",
                format!(
                    "{} ({}/s in the window), {} refused, {} behind rate",
                    f.published,
                    si(f.published_per_s),
                    f.publish_errors,
                    f.rate_deficit
                ),
            );
            row(
                "acknowledged",
                format!("{} ({}/s)", f.acked, si(f.acked_per_s)),
            );
            row(
                "delivered",
                format!(
                    "{} of {} ({}/s over {:.2} s of deliveries)",
                    f.delivered,
                    f.expected,
                    si(f.delivered_per_s),
                    f.delivery_span_s
                ),
            );
            row(
                "delivered / window",
                format!(
                    "{}/s (incl. {:.2} s of deliveries after the window)",
                    si(f.delivered_per_window_s),
                    f.drain_s.max(0.0)
                ),
            );
            row(
                "lost / dup / reordered",
                format!("{} / {} / {}", f.lost, f.duplicated, f.out_of_order),
            );
        }
        if let Some(l) = &self.latency {
            row("latency", lat(l));
        }
        if !self.latency_timeline.is_empty() {
            let p99: Vec<String> = self.latency_timeline.iter().map(|p| us(p.p99_us)).collect();
            row("p99 by second", p99.join(" "));
        }
        if let Some(sv) = &self.server {
            row(
                "server rss",
                format!(
                    "{} before, {} established, {} end",
                    bytes(sv.rss_before_bytes),
                    bytes(sv.rss_established_bytes),
                    bytes(sv.rss_end_bytes)
                ),
            );
            if let Some(b) = sv.rss_per_conn_bytes {
                row("server rss / connection", format!("{b:.0} B"));
            }
            row(
                "server cpu",
                format!("{:.2} s ({:.0}% of a core)", sv.cpu_s, sv.cpu_util * 100.0),
            );
            if let Some(m) = sv.cpu_us_per_msg {
                row("server cpu / message", format!("{m:.3} µs"));
            }
        }
        row(
            "bench cpu",
            format!(
                "{:.2} s ({:.0}% of a core, {:.0}% per worker)",
                self.bench.cpu_s,
                self.bench.cpu_util * 100.0,
                self.bench.per_worker_util * 100.0
            ),
        );
        if let Some(h) = &self.host {
            row(
                "host cpu",
                format!(
                    "{:.2} of {} cores busy, {:.2} by other processes",
                    h.busy_cores, h.cores, h.other_busy_cores
                ),
            );
        }
        if self.protocol_errors > 0 {
            row("protocol errors", self.protocol_errors.to_string());
        }
        for (e, n) in &self.errors {
            row("error", format!("{n} × {e}"));
        }
        let disturbed = self
            .host
            .as_ref()
            .filter(|h| self.server.is_some() && h.other_busy_cores > 0.25);
        if let Some(h) = disturbed {
            let _ = writeln!(
                s,
                "  warning: other processes kept {:.2} cores busy during the run; \
                 figures are disturbed",
                h.other_busy_cores
            );
        }
        if self.bench.per_worker_util > 0.9 {
            let _ = writeln!(
                s,
                "  warning: bench workers were {:.0}% busy; the client may be the bottleneck \
                 (add --workers/--procs or cores)",
                self.bench.per_worker_util * 100.0
            );
        }
        s
    }
}

fn lat(l: &Summary) -> String {
    if l.count == 0 {
        return "-".into();
    }
    format!(
        "p50 {} p90 {} p99 {} p99.9 {} max {} (n={})",
        us(l.p50_us),
        us(l.p90_us),
        us(l.p99_us),
        us(l.p999_us),
        us(l.max_us),
        l.count
    )
}

fn us(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.1}ms", v / 1000.0)
    } else {
        format!("{v:.0}µs")
    }
}

fn si(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

fn bytes(b: u64) -> String {
    let b = b as f64;
    if b >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", b / 1024.0 / 1024.0)
    } else {
        format!("{:.1} KiB", b / 1024.0)
    }
}
