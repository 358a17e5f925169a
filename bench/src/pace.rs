//! Publication pacing for fixed-rate `fanout` runs.
//!
//! - `burst`: a 1 ms tokio interval; each tick issues every publication due
//!   since the last one, so 10,000/s arrives as 10 back to back every
//!   millisecond (tokio's timer has millisecond resolution).
//! - `even`: publication k of publisher j is due at
//!   `start + (j / P + k) × P / rate` — evenly spaced per publisher, and the
//!   P publishers offset by a fraction of the interval so that together
//!   they are evenly spaced at 1 / rate. The publisher sleeps until the
//!   next due time on a `timerfd` (CLOCK_MONOTONIC, absolute, nanosecond
//!   resolution, no timer slack) registered with the worker's event loop:
//!   no spinning, and the worker keeps serving its other connections.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use serde::Serialize;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::stats::mono_ns;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Pace {
    /// Every publication due is issued at the next 1 ms tick (bursts).
    Burst,
    /// Publications spread evenly in time (sub-millisecond timerfd).
    Even,
}

/// The even schedule of one publisher: due times and how many are due.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// CLOCK_MONOTONIC ns of publication 0.
    first_ns: u64,
    /// Spacing between this publisher's publications, ns (fractional).
    interval_ns: f64,
    /// Publications scheduled so far (issued or counted as rate deficit).
    pub scheduled: u64,
}

impl Schedule {
    /// Publisher `j` of `publishers` publishing `total_rate` / `publishers`
    /// per second from `start_ns`.
    pub fn new(start_ns: u64, total_rate: f64, publishers: usize, j: usize) -> Schedule {
        let p = publishers.max(1) as f64;
        let interval_ns = 1e9 * p / total_rate;
        let phase = interval_ns * (j as f64 / p);
        Schedule {
            first_ns: start_ns + phase as u64,
            interval_ns,
            scheduled: 0,
        }
    }

    /// Due time of the next publication not yet scheduled.
    pub fn next_due_ns(&self) -> u64 {
        self.first_ns + (self.scheduled as f64 * self.interval_ns) as u64
    }

    /// Publications due at `now_ns` (inclusive) and not yet scheduled, but
    /// none due at or after `end_ns`; marks them scheduled. Judged by
    /// `next_due_ns` itself, so "the next one is due" and "one was taken"
    /// can never disagree by a rounding (a due publication that was never
    /// taken would keep the publisher's timer firing at once, forever).
    pub fn take_due(&mut self, now_ns: u64, end_ns: u64) -> u64 {
        let mut n = 0;
        loop {
            let due = self.next_due_ns();
            if due > now_ns || due >= end_ns {
                return n;
            }
            self.scheduled += 1;
            n += 1;
        }
    }
}

/// A one-shot CLOCK_MONOTONIC timer with nanosecond resolution on the
/// tokio event loop.
pub struct Timer {
    fd: AsyncFd<OwnedFd>,
    /// Absolute expiry currently armed (0: none).
    armed_ns: u64,
}

impl Timer {
    pub fn new() -> io::Result<Timer> {
        // SAFETY: plain syscall; the returned fd is checked and owned below.
        let fd = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: the `OwnedFd` is moved into the `AsyncFd` and stays open,
        // the same descriptor, until the `AsyncFd` is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
            .map_err(io::Error::from)?;
        Ok(Timer { fd, armed_ns: 0 })
    }

    fn arm(&mut self, ns: u64) -> io::Result<()> {
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: (ns / 1_000_000_000) as libc::time_t,
                tv_nsec: (ns % 1_000_000_000) as libc::c_long,
            },
        };
        // SAFETY: valid fd and a stack itimerspec; the old value is not wanted.
        let r = unsafe {
            libc::timerfd_settime(
                self.fd.get_ref().as_raw_fd(),
                libc::TFD_TIMER_ABSTIME,
                &spec,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        self.armed_ns = ns;
        Ok(())
    }

    /// Resolves once CLOCK_MONOTONIC reaches `ns` (at once if it has).
    /// Cancellation-safe: a later call re-arms only for a new time.
    pub async fn until(&mut self, ns: u64) -> io::Result<()> {
        // A time already past resolves without touching the event loop:
        // take a unit of tokio's cooperative budget so that a caller looping
        // on past times still yields now and then (and timers, the window's
        // end included, get to fire).
        tokio::task::coop::consume_budget().await;
        loop {
            if mono_ns() >= ns {
                return Ok(());
            }
            if self.armed_ns != ns {
                self.arm(ns)?;
            }
            let mut guard = self.fd.readable().await?;
            let mut buf = [0u8; 8];
            // SAFETY: reads at most 8 bytes into a stack buffer.
            let n = unsafe {
                libc::read(
                    guard.get_inner().as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::WouldBlock {
                    return Err(e);
                }
            }
            // Expired (or a stale readiness): the fd is drained either way.
            guard.clear_ready();
            if n == 8 {
                self.armed_ns = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_schedule_interleaves_publishers() {
        // 4 publishers, 1000/s in total: each every 4 ms, offset by 1 ms.
        let mut all = Vec::new();
        for j in 0..4 {
            let mut s = Schedule::new(1_000_000_000, 1000.0, 4, j);
            for _ in 0..3 {
                all.push(s.next_due_ns());
                s.scheduled += 1;
            }
        }
        all.sort_unstable();
        let gaps: Vec<u64> = all.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.iter().all(|&g| g == 1_000_000), "{gaps:?}");
    }

    #[test]
    fn take_due_counts_and_stops_at_the_end() {
        let mut s = Schedule::new(0, 10_000.0, 1, 0); // every 100 µs from 0
        assert_eq!(s.take_due(0, 1_000_000), 1);
        assert_eq!(s.take_due(50_000, 1_000_000), 0);
        assert_eq!(s.take_due(350_000, 1_000_000), 3);
        assert_eq!(s.next_due_ns(), 400_000);
        // Nothing due at or after the end: 0..1 ms holds exactly 10.
        assert_eq!(s.take_due(5_000_000, 1_000_000), 6);
        assert_eq!(s.scheduled, 10);
        assert_eq!(s.take_due(6_000_000, 1_000_000), 0);
    }

    #[test]
    fn take_due_agrees_with_next_due_at_awkward_rates() {
        // Whenever the next publication is due (before the end), taking
        // what is due takes at least that one — for rates whose interval is
        // no whole number of nanoseconds, right up to the window's end.
        for (rate, publishers) in [
            (450.0, 1),
            (333.0, 3),
            (7.0, 1),
            (10_000.0, 7),
            (1e6 / 3.0, 2),
        ] {
            for j in 0..publishers {
                let end = 1_000_000_000 + 2_000_000_000;
                let mut s = Schedule::new(1_000_000_000, rate, publishers, j);
                while s.next_due_ns() < end {
                    let due = s.next_due_ns();
                    assert!(s.take_due(due, end) >= 1, "rate {rate} j {j} at {due}");
                }
                assert_eq!(s.take_due(u64::MAX, end), 0);
            }
        }
    }

    #[test]
    fn timer_wakes_at_sub_millisecond_times() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut t = Timer::new().unwrap();
            let mut late = Vec::new();
            for _ in 0..20 {
                let due = mono_ns() + 150_000;
                t.until(due).await.unwrap();
                let now = mono_ns();
                assert!(now >= due);
                late.push(now - due);
            }
            // Past times resolve at once.
            t.until(1).await.unwrap();
            late.sort_unstable();
            // The median wake-up is well under tokio's 1 ms timer grain
            // (generous for a loaded test machine).
            assert!(late[10] < 700_000, "{late:?}");
        });
    }
}
