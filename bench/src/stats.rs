//! Counters and latency histograms: what one worker collects (`Tally`), how
//! tallies from workers and child processes merge, and percentile summaries.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// CLOCK_MONOTONIC in nanoseconds. One clock for every process on the box,
/// so a timestamp written by a publisher process is comparable with the
/// receive time taken in a subscriber process.
/// CLOCK_REALTIME minus CLOCK_MONOTONIC in ns, measured once per process
/// (kernel receive timestamps are on the realtime clock, ours on the
/// monotonic one; over a run the two do not drift apart measurably).
pub fn realtime_offset_ns() -> i64 {
    static OFFSET: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *OFFSET.get_or_init(|| {
        let mut best = (u64::MAX, 0i64);
        for _ in 0..16 {
            let a = mono_ns();
            let r = clock_ns(libc::CLOCK_REALTIME);
            let b = mono_ns();
            if b - a < best.0 {
                best = (b - a, r as i64 - (a + (b - a) / 2) as i64);
            }
        }
        best.1
    })
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes into a stack timespec.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

pub fn mono_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// Highest value recorded: 100 s in nanoseconds (larger ones are clamped).
const HIST_MAX: u64 = 100_000_000_000;

/// A latency histogram in nanoseconds, 3 significant digits. Crosses process
/// boundaries as a list of `[value, count]` pairs.
#[derive(Clone, Debug)]
pub struct Hist(Histogram<u64>);

impl Default for Hist {
    fn default() -> Self {
        Hist(Histogram::new_with_bounds(1, HIST_MAX, 3).expect("valid bounds"))
    }
}

impl Hist {
    pub fn record(&mut self, ns: u64) {
        let _ = self.0.record(ns.clamp(1, HIST_MAX));
    }

    pub fn record_n(&mut self, ns: u64, n: u64) {
        let _ = self.0.record_n(ns.clamp(1, HIST_MAX), n);
    }

    pub fn merge(&mut self, other: &Hist) {
        let _ = self.0.add(&other.0);
    }

    #[cfg(test)]
    pub fn len(&self) -> u64 {
        self.0.len()
    }

    /// The percentile curve: (quantile, µs) points, denser towards the
    /// tail (hdrhistogram's quantile iteration, 5 ticks per half distance).
    pub fn percentiles(&self) -> Vec<(f64, f64)> {
        if self.0.is_empty() {
            return vec![];
        }
        self.0
            .iter_quantiles(5)
            .map(|v| {
                (
                    v.quantile_iterated_to(),
                    v.value_iterated_to() as f64 / 1000.0,
                )
            })
            .collect()
    }

    pub fn summary(&self) -> Summary {
        let h = &self.0;
        let us = |ns: u64| ns as f64 / 1000.0;
        if h.is_empty() {
            return Summary::default();
        }
        Summary {
            count: h.len(),
            min_us: us(h.min()),
            mean_us: h.mean() / 1000.0,
            p50_us: us(h.value_at_quantile(0.50)),
            p90_us: us(h.value_at_quantile(0.90)),
            p99_us: us(h.value_at_quantile(0.99)),
            p999_us: us(h.value_at_quantile(0.999)),
            max_us: us(h.max()),
        }
    }
}

impl Serialize for Hist {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let pairs: Vec<[u64; 2]> = self
            .0
            .iter_recorded()
            .map(|v| [v.value_iterated_to(), v.count_at_value()])
            .collect();
        pairs.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Hist {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let pairs = Vec::<[u64; 2]>::deserialize(d)?;
        let mut h = Hist::default();
        for [v, n] in pairs {
            h.record_n(v, n);
        }
        Ok(h)
    }
}

/// Percentiles in microseconds.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub count: u64,
    pub min_us: f64,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

/// Key of one publication stream: (channel index, publisher index).
pub fn stream_key(channel: u32, publisher: u32) -> u64 {
    (channel as u64) << 32 | publisher as u64
}

pub fn stream_channel(key: u64) -> u32 {
    (key >> 32) as u32
}

/// First and last time something happened (CLOCK_MONOTONIC ns); both 0
/// until it happened once.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Span {
    pub first_ns: u64,
    pub last_ns: u64,
}

impl Span {
    pub fn see(&mut self, ns: u64) {
        if self.first_ns == 0 || ns < self.first_ns {
            self.first_ns = ns;
        }
        self.last_ns = self.last_ns.max(ns);
    }

    pub fn merge(&mut self, o: Span) {
        if o.first_ns != 0 {
            self.see(o.first_ns);
            self.see(o.last_ns);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.first_ns == 0
    }

    /// Seconds from first to last (0 when empty or a single instant).
    pub fn secs(&self) -> f64 {
        self.last_ns.saturating_sub(self.first_ns) as f64 / 1e9
    }
}

/// At most this many distinct error texts are kept (the rest are counted
/// under "other").
const MAX_ERROR_KINDS: usize = 16;

/// Everything one worker (or, merged, one process or the whole run) counted.
/// Fields a scenario does not use stay zero.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Tally {
    // --- connections
    pub attempted: u64,
    pub established: u64,
    pub connect_errors: u64,
    /// Connections lost during the measured phase.
    pub disconnects: u64,
    /// Unexpected or malformed replies.
    pub protocol_errors: u64,
    /// Setup phase bounds (CLOCK_MONOTONIC ns); 0 = unset.
    pub setup_start_ns: u64,
    pub setup_end_ns: u64,
    /// Connect + upgrade (+ connect/subscribe replies) time per connection.
    pub connect_latency: Hist,
    /// Server pings (`{}`) answered.
    pub pings: u64,
    // --- echo
    pub sent: u64,
    pub received: u64,
    pub mismatched: u64,
    // --- fanout
    pub published: u64,
    pub publish_acked: u64,
    pub publish_errors: u64,
    pub delivered: u64,
    /// Bytes of the publication pushes received (the lines, unframed).
    pub push_bytes: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    /// Publications the rate schedule wanted but the window did not allow.
    pub rate_deficit: u64,
    /// Publications per stream (`stream_key`), counted as sent.
    pub stream_published: BTreeMap<u64, u64>,
    /// Distinct publications received per stream, summed over subscribers.
    pub stream_received: BTreeMap<u64, u64>,
    /// Subscribers per channel that completed their subscribe.
    pub channel_subscribers: BTreeMap<u32, u64>,
    /// First and last publication issued, first and last acknowledgement,
    /// first and last delivery received (CLOCK_MONOTONIC ns; 0 = none).
    pub publish_span: Span,
    pub ack_span: Span,
    pub delivery_span: Span,
    // --- both
    /// Message latency: echo round trip, or publish → receive.
    pub latency: Hist,
    /// Fanout: publish → receive latency by second of the run (index: whole
    /// seconds from the window's start to the receive time), so a tail can
    /// be placed in time (warm-up, a stall, the drain). Its counts are the
    /// deliveries (echo: replies) per second.
    pub latency_by_s: Vec<Hist>,
    /// Publication issued → acknowledged (fanout, storm, publish).
    pub ack_latency: Hist,
    /// `--rx-timestamps`: publish → the kernel's receive timestamp of the
    /// data in the subscriber's socket (the server's part, plus loopback).
    #[serde(default)]
    pub socket_latency: Hist,
    /// `--rx-timestamps`: that timestamp → read and decoded by the bench
    /// (the load generator's own queueing).
    #[serde(default)]
    pub read_delay: Hist,
    /// Acknowledgements per second of the run (same seconds as `latency_by_s`).
    pub acks_by_s: Vec<u64>,
    /// Storm: connections subscribed again per second of the run.
    pub resubscribed_by_s: Vec<u64>,
    /// Storm: one entry per drop round.
    pub rounds: Vec<Round>,
    /// Storm: publications that came in subscribe replies (recovered).
    pub recovered_pubs: u64,
    pub errors: BTreeMap<String, u64>,
}

/// Storm: what one drop round did to the connections.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Round {
    #[serde(flatten)]
    pub n: RoundCounts,
    /// Last resubscription (CLOCK_MONOTONIC ns; 0: none).
    pub last_ns: u64,
    /// Per connection: from noticing the drop to subscribed again,
    /// including the reconnect delay.
    pub reconnect: Hist,
}

/// Storm: the connections of one drop round, counted.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct RoundCounts {
    /// Connections that went down in this round.
    pub dropped: u64,
    /// …and were connected and subscribed again.
    pub resubscribed: u64,
    /// The subscribe reply said `recovered: true`.
    pub recovered: u64,
    /// The subscribe reply said `recovered: false`.
    pub unrecovered: u64,
    /// The subscribe reply said nothing about recovery (a server without it).
    pub recovery_ignored: u64,
    /// Reconnect attempts that failed (each was retried).
    pub failed_attempts: u64,
}

impl std::ops::AddAssign for RoundCounts {
    fn add_assign(&mut self, o: RoundCounts) {
        self.dropped += o.dropped;
        self.resubscribed += o.resubscribed;
        self.recovered += o.recovered;
        self.unrecovered += o.unrecovered;
        self.recovery_ignored += o.recovery_ignored;
        self.failed_attempts += o.failed_attempts;
    }
}

impl Round {
    fn merge(&mut self, o: &Round) {
        self.n += o.n;
        self.last_ns = self.last_ns.max(o.last_ns);
        self.reconnect.merge(&o.reconnect);
    }
}

/// Adds `n` to second `sec` of a per-second timeline.
pub fn bump(timeline: &mut Vec<u64>, sec: u64, n: u64) {
    let i = (sec as usize).min(MAX_TIMELINE_S - 1);
    if timeline.len() <= i {
        timeline.resize(i + 1, 0);
    }
    timeline[i] += n;
}

/// Adds timeline `b` into `a`.
fn merge_timeline(a: &mut Vec<u64>, b: &[u64]) {
    if a.len() < b.len() {
        a.resize(b.len(), 0);
    }
    for (x, y) in a.iter_mut().zip(b) {
        *x += y;
    }
}

/// Longest timeline kept (seconds); later deliveries go in the last slot.
const MAX_TIMELINE_S: usize = 600;

impl Tally {
    /// Records a latency both overall and in second `sec` of the timeline.
    pub fn record_latency(&mut self, sec: Option<u64>, ns: u64) {
        self.latency.record(ns);
        if let Some(s) = sec {
            let i = (s as usize).min(MAX_TIMELINE_S - 1);
            if self.latency_by_s.len() <= i {
                self.latency_by_s.resize_with(i + 1, Hist::default);
            }
            self.latency_by_s[i].record(ns);
        }
    }

    pub fn error(&mut self, what: impl std::fmt::Display) {
        let mut text = what.to_string();
        if text.len() > 160 {
            let mut end = 160;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        if self.errors.len() >= MAX_ERROR_KINDS && !self.errors.contains_key(&text) {
            text = "other".into();
        }
        *self.errors.entry(text).or_default() += 1;
    }

    pub fn setup_span(&mut self, start: u64, end: u64) {
        if start != 0 && (self.setup_start_ns == 0 || start < self.setup_start_ns) {
            self.setup_start_ns = start;
        }
        self.setup_end_ns = self.setup_end_ns.max(end);
    }

    pub fn merge(&mut self, o: &Tally) {
        self.attempted += o.attempted;
        self.established += o.established;
        self.connect_errors += o.connect_errors;
        self.disconnects += o.disconnects;
        self.protocol_errors += o.protocol_errors;
        self.setup_span(o.setup_start_ns, o.setup_end_ns);
        self.connect_latency.merge(&o.connect_latency);
        self.pings += o.pings;
        self.sent += o.sent;
        self.received += o.received;
        self.mismatched += o.mismatched;
        self.published += o.published;
        self.publish_acked += o.publish_acked;
        self.publish_errors += o.publish_errors;
        self.delivered += o.delivered;
        self.push_bytes += o.push_bytes;
        self.duplicates += o.duplicates;
        self.out_of_order += o.out_of_order;
        self.rate_deficit += o.rate_deficit;
        self.publish_span.merge(o.publish_span);
        self.ack_span.merge(o.ack_span);
        self.delivery_span.merge(o.delivery_span);
        for (k, v) in &o.stream_published {
            *self.stream_published.entry(*k).or_default() += v;
        }
        for (k, v) in &o.stream_received {
            *self.stream_received.entry(*k).or_default() += v;
        }
        for (k, v) in &o.channel_subscribers {
            *self.channel_subscribers.entry(*k).or_default() += v;
        }
        self.latency.merge(&o.latency);
        if self.latency_by_s.len() < o.latency_by_s.len() {
            self.latency_by_s
                .resize_with(o.latency_by_s.len(), Hist::default);
        }
        for (a, b) in self.latency_by_s.iter_mut().zip(&o.latency_by_s) {
            a.merge(b);
        }
        self.ack_latency.merge(&o.ack_latency);
        self.socket_latency.merge(&o.socket_latency);
        self.read_delay.merge(&o.read_delay);
        merge_timeline(&mut self.acks_by_s, &o.acks_by_s);
        merge_timeline(&mut self.resubscribed_by_s, &o.resubscribed_by_s);
        if self.rounds.len() < o.rounds.len() {
            self.rounds.resize_with(o.rounds.len(), Round::default);
        }
        for (a, b) in self.rounds.iter_mut().zip(&o.rounds) {
            a.merge(b);
        }
        self.recovered_pubs += o.recovered_pubs;
        for (k, v) in &o.errors {
            if self.errors.len() >= MAX_ERROR_KINDS && !self.errors.contains_key(k) {
                *self.errors.entry("other".into()).or_default() += v;
            } else {
                *self.errors.entry(k.clone()).or_default() += v;
            }
        }
    }

    /// Deliveries the run owed: for each stream, publications × subscribers
    /// of its channel.
    pub fn expected_deliveries(&self) -> u64 {
        self.stream_published
            .iter()
            .map(|(k, n)| {
                n * self
                    .channel_subscribers
                    .get(&stream_channel(*k))
                    .copied()
                    .unwrap_or(0)
            })
            .sum()
    }

    /// Owed deliveries that never arrived (distinct publications only).
    pub fn lost(&self) -> u64 {
        let received: u64 = self.stream_received.values().sum();
        self.expected_deliveries().saturating_sub(received)
    }
}

/// Per-stream delivery check on one subscriber: publications carry
/// sequence numbers 1, 2, 3…; gaps are remembered as ranges so a late
/// arrival (reordering) is told apart from a duplicate without keeping
/// every number seen.
#[derive(Debug, Clone)]
pub struct SeqCheck {
    /// Next in-order sequence number expected (starts at 1).
    next: u64,
    /// Missing numbers below `next`, as half-open ranges.
    gaps: Vec<(u64, u64)>,
    pub duplicates: u64,
    pub out_of_order: u64,
}

impl Default for SeqCheck {
    fn default() -> SeqCheck {
        SeqCheck {
            next: 1,
            gaps: Vec::new(),
            duplicates: 0,
            out_of_order: 0,
        }
    }
}

impl SeqCheck {
    pub fn see(&mut self, seq: u64) {
        if seq == self.next {
            self.next += 1;
        } else if seq > self.next {
            self.gaps.push((self.next, seq));
            self.next = seq + 1;
        } else if let Some(i) = self.gaps.iter().position(|&(a, b)| a <= seq && seq < b) {
            // A late arrival fills a hole.
            self.out_of_order += 1;
            let (a, b) = self.gaps[i];
            match (seq == a, seq + 1 == b) {
                (true, true) => {
                    self.gaps.remove(i);
                }
                (true, false) => self.gaps[i].0 = seq + 1,
                (false, true) => self.gaps[i].1 = seq,
                (false, false) => {
                    self.gaps[i].1 = seq;
                    self.gaps.insert(i + 1, (seq + 1, b));
                }
            }
        } else {
            self.duplicates += 1;
        }
    }

    /// Distinct sequence numbers received.
    pub fn distinct(&self) -> u64 {
        let missing: u64 = self.gaps.iter().map(|(a, b)| b - a).sum();
        (self.next - 1) - missing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_check_counts() {
        let mut s = SeqCheck::default();
        for q in [1, 2, 3, 5, 4, 4, 8, 6, 7, 2, 10] {
            s.see(q);
        }
        // 1..=8 and 10 distinct; 9 missing.
        assert_eq!(s.distinct(), 9);
        assert_eq!(s.duplicates, 2);
        assert_eq!(s.out_of_order, 3);
    }

    #[test]
    fn hist_round_trips_through_json() {
        let mut h = Hist::default();
        for v in 1..=1000u64 {
            h.record(v * 1000);
        }
        let json = serde_json::to_string(&h).unwrap();
        let back: Hist = serde_json::from_str(&json).unwrap();
        assert_eq!(back.len(), 1000);
        assert_eq!(back.summary(), h.summary());
    }

    #[test]
    fn percentile_curve_and_timelines() {
        let mut h = Hist::default();
        assert!(h.percentiles().is_empty());
        for v in 1..=10_000u64 {
            h.record(v * 1000);
        }
        let p = h.percentiles();
        assert!(p.len() > 20);
        assert!(p.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
        let last = p.last().unwrap();
        assert!((last.0 - 1.0).abs() < 1e-9 && (last.1 - 10_000.0).abs() < 20.0);
        let mut a = Tally::default();
        bump(&mut a.acks_by_s, 2, 5);
        let mut b = Tally::default();
        bump(&mut b.acks_by_s, 0, 1);
        bump(&mut b.acks_by_s, 3, 1);
        let mut round = Round {
            last_ns: 7,
            ..Round::default()
        };
        round.n.dropped = 2;
        b.rounds.push(round);
        a.merge(&b);
        assert_eq!(a.acks_by_s, vec![1, 0, 5, 1]);
        assert_eq!((a.rounds[0].n.dropped, a.rounds[0].last_ns), (2, 7));
    }

    #[test]
    fn spans_merge() {
        let mut a = Span::default();
        assert!(a.is_empty());
        a.merge(Span::default());
        assert!(a.is_empty());
        a.see(50);
        a.see(20);
        a.see(70);
        let mut b = Span::default();
        b.see(90);
        b.merge(a);
        assert_eq!((b.first_ns, b.last_ns), (20, 90));
        assert!((b.secs() - 70e-9).abs() < 1e-15);
    }

    #[test]
    fn lost_accounts_for_subscribers_per_channel() {
        let mut t = Tally::default();
        t.stream_published.insert(stream_key(0, 0), 10);
        t.stream_published.insert(stream_key(1, 0), 5);
        t.channel_subscribers.insert(0, 3);
        t.channel_subscribers.insert(1, 2);
        t.stream_received.insert(stream_key(0, 0), 30);
        t.stream_received.insert(stream_key(1, 0), 9);
        assert_eq!(t.expected_deliveries(), 40);
        assert_eq!(t.lost(), 1);
        let json = serde_json::to_string(&t).unwrap();
        let back: Tally = serde_json::from_str(&json).unwrap();
        assert_eq!(back.lost(), 1);
    }
}
