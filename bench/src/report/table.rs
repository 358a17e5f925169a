//! The human table.

use std::fmt::Write as _;

use super::Report;
use crate::scenario::storm::DropKind;
use crate::stats::Summary;
use crate::transport::Transport;

impl Report {
    pub fn table(&self) -> String {
        let mut s = String::new();
        let mut row = |k: &str, v: String| {
            let _ = writeln!(s, "  {k:<26} {v}");
        };
        let c = &self.connections;
        row("scenario", format!("{} {}", self.scenario, self.url));
        if self.transport.name != Transport::WebSocket.name() {
            row(
                "transport",
                format!("{} {}", self.transport.name, self.transport.url),
            );
        }
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
            if h.warmup_established > 0 {
                row(
                    "warm-up",
                    format!(
                        "{} connections, closed before the run",
                        h.warmup_established
                    ),
                );
            }
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
        if let Some(p) = &self.publish {
            row(
                "publish",
                format!(
                    "via {}, {} publisher(s) × {} in flight",
                    p.via, p.publishers, p.in_flight
                ),
            );
        }
        if let Some(st) = &self.storm {
            row(
                "storm",
                format!(
                    "{} drop round(s) by {}",
                    st.drops,
                    match st.drop {
                        DropKind::Api => "server API disconnect",
                        DropKind::Client => "the bench resetting its sockets",
                    }
                ),
            );
            for (k, r) in st.rounds.iter().enumerate() {
                let back = match r.reestablish_s {
                    Some(secs) => format!("all back in {secs:.2} s ({:.0}/s)", r.per_s),
                    None => "none back".into(),
                };
                row(
                    &format!("drop {} at {:.1} s", k + 1, r.at_s),
                    format!(
                        "{} dropped, {} resubscribed, {back}; recovered {}, not {} \
                         ({} refused, {} without recovery); {} failed attempts",
                        r.n.dropped,
                        r.n.resubscribed,
                        r.n.recovered,
                        r.n.unrecovered + r.n.recovery_ignored,
                        r.n.unrecovered,
                        r.n.recovery_ignored,
                        r.n.failed_attempts
                    ),
                );
                row(&format!("drop {} reconnect", k + 1), lat(&r.reconnect));
            }
            row(
                "recovered publications",
                st.recovered_publications.to_string(),
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
        }
        // Deliveries (a publish run without subscribers has none).
        let deliveries = self
            .fanout
            .as_ref()
            .filter(|f| self.publish.is_none() || f.expected > 0);
        if let Some(f) = deliveries {
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
                "push bytes / delivery",
                format!("{:.1}", f.push_bytes_per_delivery),
            );
            row(
                "lost / dup / reordered",
                format!("{} / {} / {}", f.lost, f.duplicated, f.out_of_order),
            );
        }
        if let Some(l) = &self.latency {
            row("latency", lat(l));
        }
        if let Some(l) = &self.socket_latency {
            row("  publish → socket", lat(l));
        }
        if let Some(l) = &self.read_delay {
            row("  socket → read", lat(l));
        }
        if let Some(l) = &self.server_latency {
            row(
                "server-side latency",
                format!(
                    "p50 {} p99 {} p99.9 {} mean {} ≤500µs {:.2}% (n={})",
                    us(l.p50_us),
                    us(l.p99_us),
                    us(l.p999_us),
                    us(l.mean_us),
                    l.within_500us * 100.0,
                    l.count
                ),
            );
            if let (Some(f), Some(n)) = (l.frames, l.sends) {
                row(
                    "server sends",
                    format!(
                        "{f} frames in {n} sendmsg ({:.2} per send), {} flush holds",
                        l.frames_per_send.unwrap_or(0.0),
                        l.flush_holds.map_or("?".to_string(), |h| h.to_string())
                    ),
                );
            }
        }
        if let Some(l) = &self.ack_latency {
            row("ack latency", lat(l));
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
            if let Some(b) = sv.anon_per_conn_bytes {
                row("server anon / connection", format!("{b:.0} B"));
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

pub(super) fn si(v: f64) -> String {
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
