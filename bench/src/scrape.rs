//! The server's own delivery-latency histogram (`--metrics-url`): its
//! `/metrics` is read before the window and after the drain, and the
//! quantiles come from the difference of the two (ringcast's
//! `ringcast_delivery_latency_seconds`: publication accepted by its owner →
//! frame handed to the kernel, per delivery).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Serialize;

/// The histogram the server exposes.
pub const SERVER_LATENCY: &str = "ringcast_delivery_latency_seconds";

/// Counters read with it (summed over their labels), which say how the
/// shards sent: frames written, `sendmsg` calls, flush passes held back.
pub const SERVER_COUNTERS: [&str; 3] = [
    "ringcast_messages_sent_total",
    "ringcast_sends_total",
    "ringcast_flush_holds_total",
];

/// One reading of a Prometheus histogram: cumulative counts per upper
/// bound (seconds, `+Inf` last), and the sum; and the [`SERVER_COUNTERS`]
/// (None: not exposed).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    pub buckets: Vec<(f64, u64)>,
    pub sum: f64,
    pub counters: [Option<f64>; 3],
}

/// The server side's latency over the run, from the bucket deltas.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerLatency {
    pub count: u64,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    /// Deliveries at or under 500 µs (a bucket bound), as a fraction.
    pub within_500us: f64,
    /// Frames the server wrote, its `sendmsg` calls and their ratio, and
    /// flush passes it held back (`flush_hold_max`), during the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frames: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sends: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frames_per_send: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flush_holds: Option<u64>,
}

/// GET `url` (plain `http://host:port/path`), the body as text.
pub fn get(url: &str) -> anyhow::Result<String> {
    let rest = url
        .strip_prefix("http://")
        .context("--metrics-url must be http://host:port/path")?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = host
        .to_socket_addrs()?
        .next()
        .with_context(|| format!("{host}: no address"))?;
    let t = Duration::from_secs(5);
    let mut s = TcpStream::connect_timeout(&addr, t)?;
    s.set_read_timeout(Some(t))?;
    s.set_write_timeout(Some(t))?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)?;
    let text = String::from_utf8_lossy(&resp);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        bail!("{url}: no HTTP response");
    };
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        bail!("{url}: {}", head.lines().next().unwrap_or(""));
    }
    Ok(body.to_string())
}

/// The histogram `name` in a text exposition (the series without labels
/// other than `le`), or None when it is not there.
pub fn parse(text: &str, name: &str) -> Option<Reading> {
    let bucket = format!("{name}_bucket{{le=\"");
    let sum = format!("{name}_sum ");
    let mut r = Reading::default();
    let mut found = false;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix(&bucket) {
            let (le, count) = rest.split_once("\"} ")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            r.buckets.push((le, count.trim().parse().ok()?));
            found = true;
        } else if let Some(v) = line.strip_prefix(&sum) {
            r.sum = v.trim().parse().ok()?;
        }
    }
    r.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    for (slot, name) in r.counters.iter_mut().zip(SERVER_COUNTERS) {
        *slot = counter(text, name);
    }
    found.then_some(r)
}

/// The sum of every series of counter `name` (`name{...} v` and `name v`),
/// or None when there is none.
pub fn counter(text: &str, name: &str) -> Option<f64> {
    let mut total = None;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let value = if let Some(labelled) = rest.strip_prefix('{') {
            labelled.split_once("} ").map(|(_, v)| v)
        } else {
            rest.strip_prefix(' ')
        };
        if let Some(v) = value.and_then(|v| v.trim().parse::<f64>().ok()) {
            *total.get_or_insert(0.0) += v;
        }
    }
    total
}

impl Reading {
    /// What was added between `before` and `self`.
    pub fn since(&self, before: &Reading) -> Reading {
        let at = |le: f64| {
            before
                .buckets
                .iter()
                .find(|(b, _)| *b == le)
                .map_or(0, |(_, c)| *c)
        };
        Reading {
            buckets: self
                .buckets
                .iter()
                .map(|&(le, c)| (le, c.saturating_sub(at(le))))
                .collect(),
            sum: self.sum - before.sum,
            counters: std::array::from_fn(|i| {
                Some(self.counters[i]? - before.counters[i].unwrap_or(0.0))
            }),
        }
    }

    pub fn count(&self) -> u64 {
        self.buckets.last().map_or(0, |b| b.1)
    }

    /// The `q` quantile in seconds, interpolated linearly within its bucket
    /// as Prometheus's `histogram_quantile` does (in the `+Inf` bucket: the
    /// highest finite bound).
    pub fn quantile(&self, q: f64) -> f64 {
        let total = self.count();
        if total == 0 {
            return 0.0;
        }
        let rank = q * total as f64;
        let (mut lo, mut below) = (0.0, 0u64);
        for &(le, c) in &self.buckets {
            if c as f64 >= rank {
                if le.is_infinite() {
                    return lo;
                }
                let inside = (c - below) as f64;
                let frac = if inside > 0.0 {
                    (rank - below as f64) / inside
                } else {
                    1.0
                };
                return lo + (le - lo) * frac;
            }
            (lo, below) = (le, c);
        }
        lo
    }

    pub fn summary(&self) -> ServerLatency {
        let n = self.count();
        let within = self
            .buckets
            .iter()
            .find(|(le, _)| (*le - 0.0005).abs() < 1e-12)
            .map_or(0, |b| b.1);
        ServerLatency {
            count: n,
            mean_us: if n > 0 {
                self.sum / n as f64 * 1e6
            } else {
                0.0
            },
            p50_us: self.quantile(0.5) * 1e6,
            p99_us: self.quantile(0.99) * 1e6,
            p999_us: self.quantile(0.999) * 1e6,
            within_500us: if n > 0 { within as f64 / n as f64 } else { 0.0 },
            frames: self.counters[0].map(|v| v as u64),
            sends: self.counters[1].map(|v| v as u64),
            frames_per_send: match self.counters {
                [Some(f), Some(s), _] if s > 0.0 => Some(f / s),
                _ => None,
            },
            flush_holds: self.counters[2].map(|v| v as u64),
        }
    }
}

/// Reads the server's histogram; None (with a warning) when it cannot.
pub fn read(url: &str) -> Option<Reading> {
    match get(url).map(|t| parse(&t, SERVER_LATENCY)) {
        Ok(Some(r)) => Some(r),
        Ok(None) => {
            eprintln!("warning: {url} has no {SERVER_LATENCY}");
            None
        }
        Err(e) => {
            eprintln!("warning: reading {url}: {e:#}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "# TYPE ringcast_delivery_latency_seconds histogram
ringcast_delivery_latency_seconds_bucket{le=\"0.0001\"} 10
ringcast_delivery_latency_seconds_bucket{le=\"0.0005\"} 10
ringcast_delivery_latency_seconds_bucket{le=\"0.001\"} 10
ringcast_delivery_latency_seconds_bucket{le=\"+Inf\"} 10
ringcast_delivery_latency_seconds_sum 0.0005
ringcast_delivery_latency_seconds_count 10
";
    const B: &str = "ringcast_delivery_latency_seconds_bucket{le=\"0.0001\"} 60
ringcast_delivery_latency_seconds_bucket{le=\"0.0005\"} 109
ringcast_delivery_latency_seconds_bucket{le=\"0.001\"} 110
ringcast_delivery_latency_seconds_bucket{le=\"+Inf\"} 110
ringcast_delivery_latency_seconds_sum 0.0105
ringcast_delivery_latency_seconds_count 110
";

    #[test]
    fn quantiles_of_the_difference() {
        let d = parse(B, SERVER_LATENCY)
            .unwrap()
            .since(&parse(A, SERVER_LATENCY).unwrap());
        assert_eq!(d.count(), 100);
        let s = d.summary();
        // 50 of 100 in (0, 100 µs]: the median is that bucket's top.
        assert!((s.p50_us - 100.0).abs() < 1e-6, "{s:?}");
        // The 99th is the 49th of 49 in (100, 500 µs].
        assert!((s.p99_us - 500.0).abs() < 1e-6, "{s:?}");
        // 99.9: nine tenths into the one in (500 µs, 1 ms].
        assert!((s.p999_us - 950.0).abs() < 1e-6, "{s:?}");
        assert!((s.mean_us - 100.0).abs() < 1e-6);
        assert!((s.within_500us - 0.99).abs() < 1e-12);
        assert!(parse("x 1\n", SERVER_LATENCY).is_none());
        // No counters in A and B: none reported.
        assert_eq!((s.frames, s.sends, s.flush_holds), (None, None, None));
    }

    #[test]
    fn counters_are_summed_over_labels_and_differenced() {
        let before = format!(
            "{A}ringcast_messages_sent_total{{shard=\"0\"}} 100\n\
             ringcast_messages_sent_total{{shard=\"1\"}} 50\n\
             ringcast_sends_total{{shard=\"0\"}} 75\n\
             ringcast_sends_total_other 9\n\
             ringcast_flush_holds_total 2\n"
        );
        let after = format!(
            "{B}ringcast_messages_sent_total{{shard=\"0\"}} 1100\n\
             ringcast_messages_sent_total{{shard=\"1\"}} 1050\n\
             ringcast_sends_total{{shard=\"0\"}} 1075\n\
             ringcast_flush_holds_total 5\n"
        );
        let s = parse(&after, SERVER_LATENCY)
            .unwrap()
            .since(&parse(&before, SERVER_LATENCY).unwrap())
            .summary();
        assert_eq!(s.frames, Some(2000));
        assert_eq!(s.sends, Some(1000));
        assert_eq!(s.frames_per_send, Some(2.0));
        assert_eq!(s.flush_holds, Some(3));
        assert_eq!(
            counter("ringcast_sends_total_other 9\n", "ringcast_sends_total"),
            None
        );
    }
}
