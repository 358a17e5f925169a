//! Output: live progress on stderr (`progress.rs`), then the result as a
//! human table (`table.rs`) or `--json`, and with `--report DIR` a
//! directory with report.md and SVG charts (`dir.rs`, `charts.rs`).

mod charts;
mod dir;
mod progress;
mod table;

use std::collections::BTreeMap;

use serde::Serialize;

pub use dir::write_dir;
pub use progress::Progress;

use crate::run::{Layout, Outcome};
use crate::scenario::storm::{DropKind, StormConfig};
use crate::scenario::{Plan, Scenario};
use crate::scrape::ServerLatency;
use crate::stats::{Hist, RoundCounts, Summary, Tally};
use crate::transport::Endpoint;

#[derive(Debug, Serialize)]
pub struct Report {
    pub scenario: &'static str,
    pub url: String,
    /// How the Centrifugo connections reached the server (`--transport`).
    pub transport: TransportOut,
    pub config: serde_json::Value,
    pub layout: Layout,
    /// Length of the measured window (`publish --count`: until the last acknowledgement).
    pub duration_s: f64,
    pub connections: Connections,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold: Option<HoldOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub echo: Option<EchoOut>,
    /// Publications and deliveries (fanout, publish, storm).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fanout: Option<FanoutOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish: Option<PublishOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storm: Option<StormOut>,
    /// Echo round trip, or publish → receive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency: Option<Summary>,
    /// Publication issued → acknowledged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ack_latency: Option<Summary>,
    /// `--rx-timestamps`: publish → the kernel's receive timestamp in the
    /// subscriber's socket.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket_latency: Option<Summary>,
    /// `--metrics-url`: the server's own delivery latency (publication
    /// accepted by its owner → frame handed to the kernel), from its
    /// histogram's bucket deltas over the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_latency: Option<ServerLatency>,
    /// `--rx-timestamps`: that timestamp → read by the bench.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_delay: Option<Summary>,
    /// Fanout: publish → receive latency per second of the run (second 0
    /// starts with the window; seconds past `duration_s` are the drain).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub latency_timeline: Vec<TimelinePoint>,
    /// Counts per second of the run, every second from 0 (zeros included).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub throughput_timeline: Vec<ThroughputPoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerOut>,
    pub bench: BenchOut,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<HostOut>,
    pub protocol_errors: u64,
    pub errors: BTreeMap<String, u64>,
    /// Latency percentile curves for the charts: (label, [(quantile, µs)]).
    #[serde(skip)]
    pub curves: Vec<(&'static str, Vec<(f64, f64)>)>,
}

#[derive(Debug, Serialize)]
pub struct TransportOut {
    pub name: &'static str,
    /// What the connections opened: `--url`, or the HTTP transport's URL.
    pub url: String,
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
    /// Connections the warm-up (`--warmup`) established and closed before
    /// the server's memory was first sampled; 0 when there was none.
    pub warmup_established: u64,
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
    /// Bytes of publication pushes received per delivery.
    pub push_bytes_per_delivery: f64,
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
pub struct PublishOut {
    /// How publications reached the server (`tcp`, `http`, `client`).
    pub via: &'static str,
    pub publishers: usize,
    pub in_flight: usize,
    pub acked: u64,
    /// Acknowledged publications / (last acknowledgement − window start).
    pub acked_per_s: f64,
    pub errors: u64,
    /// Server CPU per acknowledged publication, µs (with `--server-pid`).
    pub server_cpu_us_per_publish: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct StormOut {
    pub drop: DropKind,
    /// Drop rounds in the plan.
    pub drops: usize,
    pub rounds: Vec<RoundOut>,
    /// Sums over the rounds.
    pub dropped: u64,
    pub resubscribed: u64,
    pub recovered: u64,
    /// Resubscribed without recovery: the server said `recovered: false`
    /// or said nothing about it.
    pub not_recovered: u64,
    /// Publications that came back in subscribe replies.
    pub recovered_publications: u64,
    /// The slowest round: drop → last connection subscribed again.
    pub reestablish_s: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct RoundOut {
    /// Seconds from the window's start to the drop.
    pub at_s: f64,
    /// dropped, resubscribed, recovered, unrecovered (the server answered
    /// `recovered: false`), recovery_ignored (the reply said nothing about
    /// recovery: no recovery support), failed_attempts.
    #[serde(flatten)]
    pub n: RoundCounts,
    /// Drop → the last connection subscribed again (`None`: none came back).
    pub reestablish_s: Option<f64>,
    /// Resubscriptions per second over `reestablish_s`.
    pub per_s: f64,
    /// Per connection: drop noticed → subscribed again (incl. the delay).
    pub reconnect: Summary,
}

#[derive(Debug, Serialize)]
pub struct ThroughputPoint {
    /// Seconds since the window's start (this point covers [s, s + 1)).
    pub s: usize,
    /// Deliveries (echo: replies) received.
    pub delivered: u64,
    /// Publications acknowledged.
    pub acked: u64,
    /// Storm: connections subscribed again.
    pub resubscribed: u64,
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
    /// The same for anonymous memory (RssAnon): without the file pages
    /// (code) the connections' paths touched for the first time, which do
    /// not grow with the count.
    pub anon_per_conn_bytes: Option<f64>,
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
        let mut window_s = (o.window.end_ns - o.window.start_ns) as f64 / 1e9;
        // `publish --count` ends once its count is acknowledged: the window
        // is what it took, not the -d bound.
        if let Scenario::Publish(c) = &plan.scenario {
            if c.load.count.is_some() && t.ack_span.last_ns > o.window.start_ns {
                let took = (t.ack_span.last_ns - o.window.start_ns) as f64 / 1e9;
                window_s = window_s.min(took);
            }
        }
        let active_s = o.active_s.max(1e-9);
        let setup_s = o.tally.setup_end_ns.saturating_sub(o.tally.setup_start_ns) as f64 / 1e9;
        let msgs = match &plan.scenario {
            Scenario::Hold(_) => None,
            Scenario::Echo(_) => Some(t.received),
            Scenario::Fanout(_) | Scenario::Storm(_) => Some(t.delivered),
            Scenario::Publish(_) => Some(t.publish_acked),
        };
        let (mut hold, mut echo, mut fanout) = (None, None, None);
        match &plan.scenario {
            Scenario::Hold(_) => {
                hold = Some(HoldOut {
                    held: t.established.saturating_sub(t.disconnects),
                    pings_answered: t.pings,
                    warmup_established: 0,
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
            Scenario::Fanout(_) | Scenario::Publish(_) | Scenario::Storm(_) => {
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
                    push_bytes_per_delivery: if t.delivered > 0 {
                        t.push_bytes as f64 / t.delivered as f64
                    } else {
                        0.0
                    },
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
                    anon_per_conn_bytes: (t.established > 0 && b.anon_bytes > 0).then(|| {
                        (e.anon_bytes as f64 - b.anon_bytes as f64) / t.established as f64
                    }),
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
        let publish = match &plan.scenario {
            Scenario::Publish(c) => Some(PublishOut {
                via: c.load.publish.kind.name(),
                publishers: c.load.publishers,
                in_flight: c.load.in_flight,
                acked: t.publish_acked,
                acked_per_s: fanout.as_ref().map_or(0.0, |f| f.acked_per_s),
                errors: t.publish_errors,
                server_cpu_us_per_publish: server.as_ref().and_then(|s| s.cpu_us_per_msg),
            }),
            _ => None,
        };
        let storm = match &plan.scenario {
            Scenario::Storm(c) => Some(storm_out(c, t, o.window.start_ns)),
            _ => None,
        };
        let mut curves = Vec::new();
        let mut curve = |label: &'static str, h: &Hist| {
            let p = h.percentiles();
            if !p.is_empty() {
                curves.push((label, p));
            }
        };
        curve(
            match &plan.scenario {
                Scenario::Echo(_) => "round trip",
                _ => "publish → receive",
            },
            &t.latency,
        );
        curve("publish → ack", &t.ack_latency);
        curve("publish → socket", &t.socket_latency);
        curve("socket → read", &t.read_delay);
        curve("connect", &t.connect_latency);
        let workers = (o.layout.procs * o.layout.workers).max(1) as f64;
        let bench_util = o.bench_cpu_s / active_s;
        Report {
            scenario: plan.scenario.name(),
            url: plan.url.clone(),
            transport: TransportOut {
                name: plan.transport.name(),
                url: Endpoint::new(plan.transport, &plan.target).url(),
            },
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
            publish,
            storm,
            // (publish without subscribers has no deliveries to time)
            latency: msgs
                .map(|_| t.latency.summary())
                .filter(|l| l.count > 0 || !matches!(plan.scenario, Scenario::Publish(_))),
            ack_latency: Some(t.ack_latency.summary()).filter(|s| s.count > 0),
            socket_latency: Some(t.socket_latency.summary()).filter(|s| s.count > 0),
            read_delay: Some(t.read_delay.summary()).filter(|s| s.count > 0),
            server_latency: o.server_latency.as_ref().map(|r| r.summary()),
            throughput_timeline: throughput(t),
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
            curves,
        }
    }

    /// Deliveries lost (0 where nothing is published).
    pub fn lost(&self) -> u64 {
        self.fanout.as_ref().map_or(0, |f| f.lost)
    }
}

/// Every second from 0 to the last one with anything in it.
fn throughput(t: &Tally) -> Vec<ThroughputPoint> {
    let n = t
        .latency_by_s
        .len()
        .max(t.acks_by_s.len())
        .max(t.resubscribed_by_s.len());
    let at = |v: &[u64], i: usize| v.get(i).copied().unwrap_or(0);
    (0..n)
        .map(|s| ThroughputPoint {
            s,
            delivered: t.latency_by_s.get(s).map_or(0, |h| h.summary().count),
            acked: at(&t.acks_by_s, s),
            resubscribed: at(&t.resubscribed_by_s, s),
        })
        .collect()
}

fn storm_out(c: &StormConfig, t: &Tally, start_ns: u64) -> StormOut {
    let rounds: Vec<RoundOut> = t
        .rounds
        .iter()
        .enumerate()
        .map(|(k, r)| {
            let at = c.drop_ns(start_ns, k);
            let reestablish_s = (r.last_ns > at).then(|| (r.last_ns - at) as f64 / 1e9);
            RoundOut {
                at_s: (at - start_ns) as f64 / 1e9,
                n: r.n,
                reestablish_s,
                per_s: reestablish_s.map_or(0.0, |s| r.n.resubscribed as f64 / s),
                reconnect: r.reconnect.summary(),
            }
        })
        .collect();
    let mut all = RoundCounts::default();
    for r in &rounds {
        all += r.n;
    }
    StormOut {
        drop: c.drop,
        drops: c.drops,
        dropped: all.dropped,
        resubscribed: all.resubscribed,
        recovered: all.recovered,
        not_recovered: all.unrecovered + all.recovery_ignored,
        recovered_publications: t.recovered_pubs,
        reestablish_s: rounds
            .iter()
            .filter_map(|r| r.reestablish_s)
            .reduce(f64::max),
        rounds,
    }
}
