//! `/metrics`: Prometheus text exposition, gathered from every shard.

use std::fmt::Write as _;

use crate::hub::Hub;
use crate::shard::framing;
use crate::shard::latency;
use crate::sys;

/// One shard's counters, copied out on that shard.
#[derive(Debug, Clone, Default)]
pub struct ShardSnapshot {
    pub driver: &'static str,
    /// The shard thread's real-time priority as the kernel has it now
    /// (SCHED_FIFO or SCHED_RR), 0 under a normal policy.
    pub realtime_priority: i32,
    pub connections: u64,
    pub opened: u64,
    pub closed_gone: u64,
    pub closed_clean: u64,
    pub closed_abandoned: u64,
    pub handshake_failures: u64,
    pub refused: u64,
    pub protocol_errors: u64,
    pub slow_disconnects: u64,
    pub messages_in: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub frames_out: u64,
    pub sends: u64,
    pub flush_holds: u64,
    pub publications: u64,
    pub deliveries: u64,
    pub mesh_depth: u64,
    pub mesh_batches_in: u64,
    pub clients: u64,
    pub subscriptions: u64,
    pub channels_owned: u64,
    /// Open connections by transport name.
    pub by_transport: Vec<(&'static str, u64)>,
    /// Delivery latency of this shard's sends.
    pub latency: latency::Histogram,
}

pub fn snapshot(h: &Hub) -> ShardSnapshot {
    let s = &h.shard_stats;
    ShardSnapshot {
        driver: s.driver.get(),
        realtime_priority: match sys::scheduling() {
            Ok((libc::SCHED_FIFO | libc::SCHED_RR, p)) => p,
            _ => 0,
        },
        connections: s.connections.get(),
        opened: s.opened.get(),
        closed_gone: s.closed_gone.get(),
        closed_clean: s.closed_clean.get(),
        closed_abandoned: s.closed_abandoned.get(),
        handshake_failures: s.handshake_failures.get(),
        refused: s.refused_at_ceiling.get(),
        protocol_errors: s.protocol_errors.get(),
        slow_disconnects: s.slow_disconnects.get(),
        messages_in: s.messages_in.get(),
        bytes_in: s.bytes_in.get(),
        bytes_out: s.bytes_out.get(),
        frames_out: s.frames_out.get(),
        sends: s.sends.get(),
        flush_holds: s.holds.get(),
        publications: h.stats.publications.get(),
        deliveries: h.stats.deliveries.get(),
        mesh_depth: h.mesh_depth() as u64,
        mesh_batches_in: h.stats.mesh_batches_in.get(),
        clients: h.clients().census().0 as u64,
        subscriptions: h.subs.borrow().total_subscriptions() as u64,
        channels_owned: h.broker().owned_count() as u64,
        by_transport: {
            // Framings of one transport (WebSocket with and without
            // compression) count together.
            let mut v: Vec<(&'static str, u64)> = Vec::new();
            for f in framing::ALL {
                let n = s.by_transport[f as usize].get();
                match v.iter_mut().find(|(name, _)| *name == f.name()) {
                    Some((_, c)) => *c += n,
                    None => v.push((f.name(), n)),
                }
            }
            v
        },
        latency: latency::snapshot(),
    }
}

/// Process-wide figures.
pub struct Process {
    pub fd_limit: u64,
    pub max_connections: u64,
    pub uptime_secs: u64,
}

pub fn render(shards: &[ShardSnapshot], p: &Process) -> String {
    let mut out = String::with_capacity(8192);
    let mut family = |name: &str, kind: &str, help: &str, f: &dyn Fn(&ShardSnapshot) -> u64| {
        let _ = writeln!(out, "# HELP ringcast_{name} {help}");
        let _ = writeln!(out, "# TYPE ringcast_{name} {kind}");
        for (i, s) in shards.iter().enumerate() {
            let _ = writeln!(out, "ringcast_{name}{{shard=\"{i}\"}} {}", f(s));
        }
    };
    family(
        "connections",
        "gauge",
        "Open client connections (every transport).",
        &|s| s.connections,
    );
    family(
        "connections_opened_total",
        "counter",
        "WebSocket connections upgraded.",
        &|s| s.opened,
    );
    family(
        "handshake_failures_total",
        "counter",
        "Upgrades refused or abandoned.",
        &|s| s.handshake_failures,
    );
    family(
        "connections_refused_total",
        "counter",
        "Connections refused at the connection ceiling.",
        &|s| s.refused,
    );
    family(
        "protocol_errors_total",
        "counter",
        "Connections closed for WebSocket protocol violations.",
        &|s| s.protocol_errors,
    );
    family(
        "slow_consumer_disconnects_total",
        "counter",
        "Connections cut with 3008 (outbound queue over its limit).",
        &|s| s.slow_disconnects,
    );
    family(
        "messages_received_total",
        "counter",
        "WebSocket messages received.",
        &|s| s.messages_in,
    );
    family(
        "bytes_received_total",
        "counter",
        "Bytes read from client sockets.",
        &|s| s.bytes_in,
    );
    family(
        "bytes_sent_total",
        "counter",
        "Bytes written to client sockets.",
        &|s| s.bytes_out,
    );
    family(
        "messages_sent_total",
        "counter",
        "WebSocket frames written.",
        &|s| s.frames_out,
    );
    family(
        "sends_total",
        "counter",
        "sendmsg calls; messages_sent_total / sends_total is the coalescing factor.",
        &|s| s.sends,
    );
    family(
        "flush_holds_total",
        "counter",
        "Flush passes held back after a pass of many small sends (write coalescing under load).",
        &|s| s.flush_holds,
    );
    family(
        "publications_total",
        "counter",
        "Publications assigned an offset by this shard (as channel owner).",
        &|s| s.publications,
    );
    family(
        "deliveries_total",
        "counter",
        "Publications queued to local subscribers.",
        &|s| s.deliveries,
    );
    family(
        "mesh_queue_depth",
        "gauge",
        "Batches waiting in this shard's incoming mesh queues.",
        &|s| s.mesh_depth,
    );
    family(
        "mesh_batches_received_total",
        "counter",
        "Mesh batches processed.",
        &|s| s.mesh_batches_in,
    );
    family(
        "clients",
        "gauge",
        "Connected clients (after connect).",
        &|s| s.clients,
    );
    family(
        "subscriptions",
        "gauge",
        "Channel subscriptions of local clients.",
        &|s| s.subscriptions,
    );
    family(
        "channels_owned",
        "gauge",
        "Channels with subscribers owned by this shard.",
        &|s| s.channels_owned,
    );

    let _ = writeln!(
        out,
        "# HELP ringcast_transport_connections Open client connections, by transport."
    );
    let _ = writeln!(out, "# TYPE ringcast_transport_connections gauge");
    for (i, s) in shards.iter().enumerate() {
        for (transport, v) in &s.by_transport {
            let _ = writeln!(
                out,
                "ringcast_transport_connections{{shard=\"{i}\",transport=\"{transport}\"}} {v}"
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP ringcast_connections_closed_total WebSocket connections closed, by how."
    );
    let _ = writeln!(out, "# TYPE ringcast_connections_closed_total counter");
    for (i, s) in shards.iter().enumerate() {
        for (reason, v) in [
            ("peer", s.closed_gone),
            ("clean", s.closed_clean),
            ("timeout", s.closed_abandoned),
        ] {
            let _ = writeln!(
                out,
                "ringcast_connections_closed_total{{shard=\"{i}\",reason=\"{reason}\"}} {v}"
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP ringcast_shard_driver The I/O driver each shard runs (value 1)."
    );
    let _ = writeln!(out, "# TYPE ringcast_shard_driver gauge");
    for (i, s) in shards.iter().enumerate() {
        let _ = writeln!(
            out,
            "ringcast_shard_driver{{shard=\"{i}\",driver=\"{}\"}} 1",
            s.driver
        );
    }
    let _ = writeln!(
        out,
        "# HELP ringcast_shard_realtime_priority The real-time (SCHED_FIFO) priority each shard thread runs at, read from the kernel; 0: the normal policy."
    );
    let _ = writeln!(out, "# TYPE ringcast_shard_realtime_priority gauge");
    for (i, s) in shards.iter().enumerate() {
        let _ = writeln!(
            out,
            "ringcast_shard_realtime_priority{{shard=\"{i}\"}} {}",
            s.realtime_priority
        );
    }
    let mut lat = latency::Histogram::default();
    for s in shards {
        lat.merge(&s.latency);
    }
    render_latency(&mut out, &lat);
    let messages: u64 = shards.iter().map(|s| s.frames_out).sum();
    let sends: u64 = shards.iter().map(|s| s.sends).sum::<u64>().max(1);
    let gauges: [(&str, &str, f64); 6] = [
        (
            "messages_per_send",
            "Average frames per sendmsg since start.",
            messages as f64 / sends as f64,
        ),
        (
            "fd_limit",
            "RLIMIT_NOFILE (soft) of the process.",
            p.fd_limit as f64,
        ),
        (
            "open_fds",
            "File descriptors open in the process.",
            sys::open_fds() as f64,
        ),
        (
            "max_connections",
            "The connection ceiling.",
            p.max_connections as f64,
        ),
        (
            "resident_memory_bytes",
            "Resident set size of the process.",
            sys::rss_bytes() as f64,
        ),
        (
            "uptime_seconds",
            "Seconds since start.",
            p.uptime_secs as f64,
        ),
    ];
    for (name, help, v) in gauges {
        let _ = writeln!(out, "# HELP ringcast_{name} {help}");
        let _ = writeln!(out, "# TYPE ringcast_{name} gauge");
        let _ = writeln!(out, "ringcast_{name} {v}");
    }
    out
}

/// `ringcast_delivery_latency_seconds`, over every shard: publication
/// accepted by its owner (or the node's Redis link) to the send that hands
/// its frame to the kernel, per delivery (`shard/latency.rs`).
fn render_latency(out: &mut String, h: &latency::Histogram) {
    let name = "ringcast_delivery_latency_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Publication accepted by its owner to its frame handed to the kernel, per delivery (when one send carries several publications for a connection, the newer ones are estimated: docs/operations.md)."
    );
    let _ = writeln!(out, "# TYPE {name} histogram");
    let mut cumulative = 0;
    for (i, le) in latency::BOUNDS_SECONDS.iter().enumerate() {
        cumulative += h.counts.get(i).copied().unwrap_or(0);
        let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
    }
    let total = h.count();
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {total}");
    let _ = writeln!(out, "{name}_sum {}", h.sum_seconds());
    let _ = writeln!(out, "{name}_count {total}");
}
