//! The flush policy: when a flush pass looks at new input, when replies
//! leave ahead of the pass, and when the next pass is held back. Pure: the
//! reactor passes in the shard's send counters and the time, and acts on
//! the answers (`mod.rs`, the loop).
//!
//! - **Slices**: every [`FLUSH_SLICE`] connections of a longer pass, the
//!   reactor reads new input and runs the hub, so publications that arrive
//!   meanwhile join the queues of connections the pass has not reached yet.
//! - **Early replies**: at those points, command replies (a publisher's
//!   acknowledgements) leave at once, at most [`EARLY_REPLIES`] times per
//!   pass and only while the pass averages fewer than
//!   [`EARLY_BELOW_FRAMES_PER_SEND`] frames per send: each lets a windowed
//!   publisher send more into the same pass; once sends are that big,
//!   queueing deeper would only add latency.
//! - **Holds**: a pass over at least [`HOLD_MIN_CONNS`] connections that
//!   averaged 2 to 32 frames per send (its connections get frames faster
//!   than passes come, yet each send is still mostly fixed cost) holds the
//!   next pass back for as long as it took, at most `flush_hold_max`. Each
//!   send then carries more frames and such passes take at most half the
//!   core. Below 2 frames per send (quiet channels) waiting batches nothing.

use std::time::{Duration, Instant};

/// Connections flushed between looks at new input during one pass.
pub(super) const FLUSH_SLICE: usize = 256;
/// Times per pass that queued replies are sent ahead of the pass's end.
pub(super) const EARLY_REPLIES: usize = 2;
/// Replies leave early only while the pass averages fewer frames per send.
pub(super) const EARLY_BELOW_FRAMES_PER_SEND: u64 = 128;
/// A pass over at least this many connections that averaged fewer frames
/// per send than `HOLD_BELOW_FRAMES_PER_SEND` holds the next pass back —
/// if it averaged at least `HOLD_MIN_FRAMES_PER_SEND`: only then do the
/// connections get frames faster than passes come, so that waiting one
/// pass time batches more. (Thousands of connections on quiet channels
/// would only wait longer.)
pub(super) const HOLD_MIN_CONNS: usize = 4096;
pub(super) const HOLD_MIN_FRAMES_PER_SEND: u64 = 2;
pub(super) const HOLD_BELOW_FRAMES_PER_SEND: u64 = 32;

/// The shard's send counters (running totals): frames and sends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Sent {
    pub(super) frames: u64,
    pub(super) sends: u64,
}

impl Sent {
    fn since(self, start: Sent) -> Sent {
        Sent {
            frames: self.frames - start.frames,
            sends: self.sends - start.sends,
        }
    }
}

/// One flush pass over the connections that were dirty when it began.
#[derive(Debug)]
pub(super) struct Pass {
    conns: usize,
    start: Instant,
    at_start: Sent,
    early: usize,
}

impl Pass {
    /// A pass over `conns` connections, beginning at `now` with the
    /// shard's counters at `sent`.
    pub(super) fn begin(conns: usize, now: Instant, sent: Sent) -> Self {
        Pass {
            conns,
            start: now,
            at_start: sent,
            early: 0,
        }
    }

    /// After the pass flushed `done` connections: whether a slice ended
    /// with connections left, so it is time to take in new input.
    pub(super) fn slice_ends(&self, done: usize) -> bool {
        done % FLUSH_SLICE == 0 && done < self.conns
    }

    /// At a slice's end, the counters at `sent`: whether the replies that
    /// are waiting (`replies_waiting`) leave now. Counts the times it says
    /// yes.
    pub(super) fn early_replies(&mut self, sent: Sent, replies_waiting: bool) -> bool {
        let s = sent.since(self.at_start);
        let yes = self.early < EARLY_REPLIES
            && s.frames < EARLY_BELOW_FRAMES_PER_SEND * s.sends
            && replies_waiting;
        if yes {
            self.early += 1;
        }
        yes
    }

    /// At the pass's end (`now`, the counters at `sent`): until when the
    /// next pass is held back, if it is; at most `hold_max` (zero: never).
    pub(super) fn hold_after(
        &self,
        sent: Sent,
        now: Instant,
        hold_max: Duration,
    ) -> Option<Instant> {
        let s = sent.since(self.at_start);
        let small_sends = (HOLD_MIN_FRAMES_PER_SEND * s.sends
            ..HOLD_BELOW_FRAMES_PER_SEND * s.sends)
            .contains(&s.frames);
        if self.conns >= HOLD_MIN_CONNS && small_sends && !hold_max.is_zero() {
            let took = now.saturating_duration_since(self.start).min(hold_max);
            Some(now + took)
        } else {
            None
        }
    }
}

/// Whether a hold set by [`Pass::hold_after`] still holds at `now`.
pub(super) fn holding(until: Option<Instant>, now: Instant) -> bool {
    until.is_some_and(|t| t > now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(frames: u64, sends: u64) -> Sent {
        Sent { frames, sends }
    }

    #[test]
    fn a_pass_looks_at_input_after_each_full_slice_with_connections_left() {
        let p = Pass::begin(3 * FLUSH_SLICE, Instant::now(), Sent::default());
        let looks: Vec<usize> = (1..=3 * FLUSH_SLICE).filter(|&d| p.slice_ends(d)).collect();
        assert_eq!(looks, [FLUSH_SLICE, 2 * FLUSH_SLICE]);
        let short = Pass::begin(FLUSH_SLICE, Instant::now(), Sent::default());
        assert!((1..=FLUSH_SLICE).all(|d| !short.slice_ends(d)));
    }

    #[test]
    fn replies_leave_early_twice_per_pass_while_sends_are_small() {
        let base = sent(1_000, 100);
        let mut p = Pass::begin(10_000, Instant::now(), base);
        // Nothing sent yet in this pass: no average to go by.
        assert!(!p.early_replies(base, true));
        // 256 sends of 10 frames: small; but no reply waiting.
        let s1 = sent(1_000 + 2_560, 100 + 256);
        assert!(!p.early_replies(s1, false));
        assert!(p.early_replies(s1, true));
        // 127.9 frames per send: still small.
        let s2 = sent(1_000 + 127 * 512 + 511, 100 + 512);
        assert!(p.early_replies(s2, true));
        // The third time in a pass: no.
        assert!(!p.early_replies(s1, true));
        // A fresh pass whose sends average 128 frames: no.
        let mut q = Pass::begin(10_000, Instant::now(), base);
        assert!(!q.early_replies(sent(1_000 + 128 * 256, 100 + 256), true));
    }

    #[test]
    fn a_big_pass_of_small_sends_holds_the_next_for_as_long_as_it_took() {
        let t0 = Instant::now();
        let max = Duration::from_millis(100);
        let ms = Duration::from_millis;
        let p = Pass::begin(HOLD_MIN_CONNS, t0, sent(5, 5));
        let end = t0 + ms(30);
        // 2 and 31.99 frames per send hold; for the time the pass took.
        assert_eq!(
            p.hold_after(sent(5 + 2 * 4096, 5 + 4096), end, max),
            Some(end + ms(30))
        );
        assert_eq!(
            p.hold_after(sent(5 + 32 * 4096 - 1, 5 + 4096), end, max),
            Some(end + ms(30))
        );
        // 1.99 and 32 frames per send do not.
        assert_eq!(
            p.hold_after(sent(5 + 2 * 4096 - 1, 5 + 4096), end, max),
            None
        );
        assert_eq!(p.hold_after(sent(5 + 32 * 4096, 5 + 4096), end, max), None);
        // At most `hold_max`; never with a zero one.
        let late = t0 + ms(250);
        assert_eq!(
            p.hold_after(sent(5 + 8 * 4096, 5 + 4096), late, max),
            Some(late + max)
        );
        assert_eq!(
            p.hold_after(sent(5 + 8 * 4096, 5 + 4096), end, Duration::ZERO),
            None
        );
        // Fewer connections: no hold.
        let small = Pass::begin(HOLD_MIN_CONNS - 1, t0, sent(0, 0));
        assert_eq!(small.hold_after(sent(8 * 4095, 4095), end, max), None);
        // Nothing sent: no hold.
        assert_eq!(p.hold_after(sent(5, 5), end, max), None);
    }

    #[test]
    fn a_hold_lasts_until_its_time() {
        let t0 = Instant::now();
        let until = Some(t0 + Duration::from_millis(10));
        assert!(holding(until, t0));
        assert!(holding(until, t0 + Duration::from_millis(9)));
        assert!(!holding(until, t0 + Duration::from_millis(10)));
        assert!(!holding(None, t0));
    }
}
