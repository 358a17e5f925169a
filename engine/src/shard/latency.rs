//! Server-side delivery latency: from the moment a publication is accepted
//! by its owner (the owner shard on the memory broker, the node's Redis link
//! on the Redis broker) to the moment its frame is handed to the kernel for
//! a subscriber (the send that carries it), once per delivery.
//!
//! The owner reads the clock once per publication ([`stamp`]); the stamp
//! travels with the delivery to every shard with subscribers, and each
//! subscriber connection keeps the stamp of its oldest delivery not yet
//! sent and how many deliveries it has queued (`Conn`, 6 bytes that fit in
//! the struct's padding: no connection gets bigger, no queued frame
//! either). A send that carries deliveries reads the clock once ([`sent`]):
//! the oldest of them is recorded with its own age, exactly; the stamps of
//! the others are not kept, so they are taken as spread evenly between the
//! oldest and the send, and recorded at their mean age under that
//! assumption; when some stay queued, the oldest of those is estimated the
//! same way. Exact when each send carries one publication (quiet
//! channels); an estimate for the newer ones of a hot channel's batch.
//!
//! Counts live per shard (plain cells, the shard's thread only) and are
//! summed over shards for `/metrics` (`ringcast_delivery_latency_seconds`).

use std::cell::Cell;

/// When a publication was accepted: CLOCK_MONOTONIC in 64-ns units, its low 32 bits,
/// wrapping every ~275 s (ages are taken with wrapping arithmetic, so
/// an age up to that long is exact). Never 0: 0 marks a frame that is not a
/// timed delivery.
pub type Stamp = u32;

/// Not a timed delivery (join and leave pushes, recovered publications).
pub const NO_STAMP: Stamp = 0;

/// Nanoseconds per stamp unit (a power of two: the conversion is a shift).
const UNIT_SHIFT: u32 = 6;

/// The clock now, as a stamp (one clock read).
#[inline]
pub fn stamp() -> Stamp {
    // The low 32 bits of the monotonic clock in units: ages are taken with
    // wrapping arithmetic, so no epoch is needed.
    let units = (crate::sys::monotonic_ns() >> UNIT_SHIFT) as u32;
    units.max(1)
}

/// Upper bounds of the buckets, in seconds (Prometheus `le`), for 10 µs to
/// 1 s; finer around the 0.5 ms goal.
pub const BOUNDS_SECONDS: [f64; BUCKETS] = [
    0.00001, 0.00002, 0.00003, 0.00005, 0.000075, 0.0001, 0.00015, 0.0002, 0.0003, 0.0004, 0.0005,
    0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0,
];

/// Finite buckets (one more, `+Inf`, holds the rest).
pub const BUCKETS: usize = 25;

/// The same bounds in stamp units (an age of `b` units or less falls in
/// bucket `b`'s, as Prometheus's `le` has it).
const BOUNDS_UNITS: [u32; BUCKETS] = {
    let ns: [u64; BUCKETS] = [
        10_000,
        20_000,
        30_000,
        50_000,
        75_000,
        100_000,
        150_000,
        200_000,
        300_000,
        400_000,
        500_000,
        750_000,
        1_000_000,
        1_500_000,
        2_000_000,
        3_000_000,
        5_000_000,
        7_500_000,
        10_000_000,
        20_000_000,
        50_000_000,
        100_000_000,
        200_000_000,
        500_000_000,
        1_000_000_000,
    ];
    let mut u = [0u32; BUCKETS];
    let mut i = 0;
    while i < BUCKETS {
        u[i] = (ns[i] >> UNIT_SHIFT) as u32;
        i += 1;
    }
    u
};

/// One shard's histogram: deliveries per bucket (the last is `+Inf`) and
/// the sum of their ages in stamp units.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    pub counts: Vec<u64>,
    pub sum_units: u64,
}

impl Histogram {
    /// Adds another shard's counts.
    pub fn merge(&mut self, other: &Histogram) {
        if self.counts.len() < other.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.sum_units += other.sum_units;
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    pub fn sum_seconds(&self) -> f64 {
        (self.sum_units as f64) * (1u64 << UNIT_SHIFT) as f64 * 1e-9
    }
}

thread_local! {
    static COUNTS: [Cell<u64>; BUCKETS + 1] = const { [const { Cell::new(0) }; BUCKETS + 1] };
    static SUM: Cell<u64> = const { Cell::new(0) };
}

/// Records `n` deliveries of the publication stamped `since`, handed to the
/// kernel now.
#[inline]
pub fn record(since: Stamp, n: u64) {
    record_age(stamp().wrapping_sub(since), n);
}

/// A send handed the kernel the first `sent` of a connection's `queued`
/// timed deliveries, the oldest of them stamped `oldest` (one clock read).
/// The oldest counts with its age; the others, whose stamps were not kept,
/// as if the `queued` had come in evenly between `oldest` and now: the
/// rest of this send at their mean age. Returns the estimated stamp of the
/// oldest delivery still queued (meaningless when none is).
#[inline]
pub fn sent(oldest: Stamp, sent: u16, queued: u16) -> Stamp {
    let age = stamp().wrapping_sub(oldest);
    record_age(age, 1);
    let (sent, queued, span) = (sent as u64, queued.max(1) as u64, age as u64);
    if sent > 1 {
        // Delivery i (0 = oldest) came in at about i/queued of the span.
        record_age((span - span * sent / 2 / queued) as u32, sent - 1);
    }
    oldest.wrapping_add((span * sent / queued) as u32)
}

fn record_age(age: u32, n: u64) {
    let i = BOUNDS_UNITS.partition_point(|&b| b < age);
    COUNTS.with(|c| c[i].set(c[i].get() + n));
    SUM.with(|s| s.set(s.get().wrapping_add(age as u64 * n)));
}

/// This shard's histogram so far.
pub fn snapshot() -> Histogram {
    Histogram {
        counts: COUNTS.with(|c| c.iter().map(Cell::get).collect()),
        sum_units: SUM.with(Cell::get),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Per bucket, what was recorded between two snapshots.
    fn counts_since(before: &Histogram, after: &Histogram) -> Vec<u64> {
        let at = |h: &Histogram, i: usize| h.counts.get(i).copied().unwrap_or(0);
        (0..after.counts.len())
            .map(|i| at(after, i) - at(before, i))
            .collect()
    }

    #[test]
    fn ages_fall_in_their_buckets() {
        let before = snapshot();
        // 5 µs, exactly 10 µs (le is inclusive), 0.4 ms, 0.6 ms, 2 s.
        for ns in [5_000u64, 10_000, 400_000, 600_000, 2_000_000_000] {
            record_age((ns >> UNIT_SHIFT) as u32, 1);
        }
        record_age((400_000u64 >> UNIT_SHIFT) as u32, 3);
        let after = snapshot();
        let d = counts_since(&before, &after);
        assert_eq!(d[0], 2, "{d:?}");
        let le = |s: f64| BOUNDS_SECONDS.iter().position(|&b| b == s).unwrap();
        assert_eq!(d[le(0.0004)], 4);
        assert_eq!(d[le(0.00075)], 1);
        assert_eq!(d[BUCKETS], 1);
        assert_eq!(d.iter().sum::<u64>(), 8);
        let sum = Histogram {
            counts: vec![],
            sum_units: after.sum_units - before.sum_units,
        }
        .sum_seconds();
        assert!((sum - 2.002_215).abs() < 1e-5, "{sum}");
    }

    #[test]
    fn bounds_are_increasing_and_match_the_seconds() {
        for i in 1..BUCKETS {
            assert!(BOUNDS_UNITS[i] > BOUNDS_UNITS[i - 1]);
            assert!(BOUNDS_SECONDS[i] > BOUNDS_SECONDS[i - 1]);
        }
        for (u, s) in BOUNDS_UNITS.iter().zip(BOUNDS_SECONDS) {
            let ns = (*u as f64) * 64.0;
            assert!((ns - s * 1e9).abs() < 64.0, "{u} {s}");
        }
    }

    #[test]
    fn a_send_of_several_counts_the_oldest_exactly_and_spreads_the_rest() {
        let before = snapshot();
        // 4 queued, the oldest 1.2 s ago: 2 leave now.
        let oldest = stamp().wrapping_sub((1_200_000_000u64 >> UNIT_SHIFT) as u32);
        let next = sent(oldest, 2, 4);
        let after = snapshot();
        let d = counts_since(&before, &after);
        // The oldest at its age (over 1 s: +Inf); the other as the second
        // of four spread over those 1.2 s: ~0.9 s, in (0.5, 1].
        assert_eq!(d[BUCKETS], 1, "{d:?}");
        assert_eq!(d[BUCKETS - 1], 1, "{d:?}");
        assert_eq!(d.iter().sum::<u64>(), 2);
        // The third of four, still queued: about 0.6 s old.
        let age = stamp().wrapping_sub(next) as u64 * 64;
        assert!((550_000_000..700_000_000).contains(&age), "{age}");
    }

    #[test]
    fn stamps_age_across_threads() {
        let s = stamp();
        let t = std::thread::spawn(stamp).join().unwrap();
        assert!(t.wrapping_sub(s) < (1 << 31));
        assert_ne!(s, NO_STAMP);
    }
}
