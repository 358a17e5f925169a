//! The publishing and receiving halves that `fanout`, `publish` and `storm`
//! share.
//!
//! Publishers: every publication's `data` carries its send time
//! (CLOCK_MONOTONIC ns), its stream (channel, publisher) and a sequence
//! number in that stream. With P ≤ C publisher `j` publishes round-robin to
//! channels `j, j+P, j+2P…`; with P > C publisher `j` publishes to channel
//! `j % C`. A fixed `rate` is the total over all publishers (open loop,
//! bounded by `in_flight`), paced by `pace` (`even`: evenly spaced,
//! sub-millisecond; `burst`: whatever is due every millisecond, see
//! `pace.rs`); without a rate, publishers publish as fast as
//! acknowledgements come back with `in_flight` outstanding each. `count`
//! caps the publications of the whole run (split evenly over publishers).
//! Each publication's issue → acknowledgement time is recorded.
//!
//! Receivers: a subscriber measures publish → receive latency and checks each
//! stream for gaps, duplicates and reordering. Lost = publications ×
//! subscribers of their channel − distinct deliveries, summed over streams
//! after every process has reported. A storm subscriber keeps one
//! `Receiver` across its reconnects, so a publication counts as delivered
//! if it arrived on any of its connections (live or recovered).
//!
//! Besides the counts, the run keeps the first/last time of publications,
//! acknowledgements and deliveries, so rates are given over the span in
//! which things actually happened (a server that queues without bound
//! keeps delivering long after the publishing window).

use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;

use super::Plan;
use crate::centrifuge::{classify, delta_stamp, pub_offset, write_data, Line, Stamp};
use crate::pace::{Pace, Schedule, Timer};
use crate::publish::{Ack, PublishConfig, Publisher};
use crate::stats::{bump, mono_ns, stream_key, SeqCheck, Tally};
use crate::transport::{Conn, Incoming};
use crate::worker::{deadline, Crew, Hand, Window, WorkerCtx};

/// What the publishers of a run do.
#[derive(Debug, Clone, Serialize)]
pub struct PublisherLoad {
    pub channels: usize,
    pub publishers: usize,
    /// Total publications/s over all publishers; `None` = as fast as acked.
    pub rate: Option<f64>,
    /// How a fixed rate is spread in time (unused with `rate: None`).
    pub pace: Pace,
    /// Outstanding (unacknowledged) publications per publisher.
    pub in_flight: usize,
    /// Bytes of each publication's `data` JSON.
    pub size: usize,
    pub publish: PublishConfig,
    /// Publications of the whole run (`None`: until the window ends).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// Longest wait for acknowledgements and deliveries after the window, seconds.
    pub drain_max_s: f64,
}

impl PublisherLoad {
    /// Channel indices publisher `j` publishes to.
    pub fn publisher_channels(&self, j: usize) -> Vec<u32> {
        let (p, c) = (self.publishers.max(1), self.channels.max(1));
        if p <= c {
            (j..c).step_by(p).map(|x| x as u32).collect()
        } else {
            vec![(j % c) as u32]
        }
    }

    /// Publisher `j`'s share of `count`.
    fn quota(&self, j: usize) -> Option<u64> {
        let p = self.publishers.max(1) as u64;
        let j = j as u64;
        self.count.map(|n| n * (j + 1) / p - n * j / p)
    }
}

/// Spawns this worker's publishers (connection indices `ctx.share.pubs`;
/// publisher `j` is index − `first`). Returns how many are still running.
pub fn spawn_publishers(
    crew: &mut Crew,
    ctx: &WorkerCtx,
    load: &PublisherLoad,
    first: usize,
) -> Rc<Cell<usize>> {
    let running = Rc::new(Cell::new(ctx.share.pubs.len()));
    for index in ctx.share.pubs.clone() {
        let j = index - first;
        let (load, plan, running) = (load.clone(), ctx.plan.clone(), running.clone());
        crew.spawn(move |hand| async move {
            publisher(hand, index, j, load, plan).await;
            running.set(running.get() - 1);
        });
    }
    running
}

/// The end of a run with publishers: waits for the window's end (with a
/// count, only until this worker's publishers have published and had it
/// all acknowledged), then — within `drain_max_s` — for the publishers'
/// last acknowledgements, for `busy()` to turn false (storm: connections
/// still reconnecting), and until no delivery arrived for `quiet_s`.
pub async fn finish_window(
    ctx: &WorkerCtx,
    w: Window,
    load: &PublisherLoad,
    running: &Cell<usize>,
    busy: impl Fn() -> bool,
    quiet_s: f64,
) {
    let end = deadline(w.end_ns);
    let early = load.count.is_some() && !ctx.share.pubs.is_empty();
    let sleep_10ms = || tokio::time::sleep(Duration::from_millis(10));
    if early {
        while running.get() > 0 && tokio::time::Instant::now() < end {
            sleep_10ms().await;
        }
    } else {
        tokio::time::sleep_until(end).await;
    }
    let drain_end = tokio::time::Instant::now() + Duration::from_secs_f64(load.drain_max_s);
    while (running.get() > 0 || busy()) && tokio::time::Instant::now() < drain_end {
        sleep_10ms().await;
    }
    let quiet = Duration::from_secs_f64(quiet_s);
    loop {
        let before = ctx.live.received.load(Relaxed);
        let left = drain_end.saturating_duration_since(tokio::time::Instant::now());
        tokio::time::sleep(quiet.min(left)).await;
        if ctx.live.received.load(Relaxed) == before || tokio::time::Instant::now() >= drain_end {
            break;
        }
    }
}

/// One publisher's bookkeeping.
struct Streams {
    channels: Vec<u32>,
    names: Vec<String>,
    /// Last sequence number issued per channel slot.
    seq: Vec<u64>,
    /// Publications refused by the server per slot (not owed to anyone).
    refused: Vec<u64>,
    next_slot: usize,
    /// Request id → (slot, issue time), for publications not yet acknowledged.
    outstanding: HashMap<u64, (usize, u64)>,
    data: Vec<u8>,
    /// The window's start (for acknowledgements per second).
    start_ns: u64,
}

async fn publisher(mut h: Hand, index: usize, j: usize, load: PublisherLoad, plan: Arc<Plan>) {
    let p = Publisher::open(&load.publish, &mut h, index, &plan).await;
    h.setup_done();
    let Some(mut p) = p else { return };
    let channels = load.publisher_channels(j);
    let mut st = Streams {
        names: channels.iter().map(|&c| plan.channel(c as usize)).collect(),
        seq: vec![0; channels.len()],
        refused: vec![0; channels.len()],
        channels,
        next_slot: 0,
        outstanding: HashMap::new(),
        data: Vec::with_capacity(load.size + 64),
        start_ns: 0,
    };
    let r = match wait_go(&mut h, &mut p).await {
        Ok(Some(w)) => {
            st.start_ns = w.start_ns;
            publish_loop(&mut h, &mut p, &mut st, &load, j as u32, w).await
        }
        Ok(None) => Ok(()),
        Err(e) => Err(e),
    };
    let (mut issued, mut refused) = (0, 0);
    {
        let mut t = h.tally.borrow_mut();
        for (slot, &c) in st.channels.iter().enumerate() {
            issued += st.seq[slot];
            refused += st.refused[slot];
            let owed = st.seq[slot] - st.refused[slot];
            if st.seq[slot] > 0 {
                *t.stream_published
                    .entry(stream_key(c, j as u32))
                    .or_default() += owed;
            }
        }
        t.published += issued;
        t.publish_errors += refused;
    }
    match r {
        Ok(()) => p.close().await,
        Err(e) => h.disconnected(e),
    }
}

impl Streams {
    fn issue(&mut self, p: &mut Publisher, n: u64, publisher: u32, size: usize, tally: &mut Tally) {
        if n == 0 {
            return;
        }
        let t = mono_ns();
        tally.publish_span.see(t);
        for _ in 0..n {
            let slot = self.next_slot;
            self.next_slot = (self.next_slot + 1) % self.channels.len();
            self.seq[slot] += 1;
            self.data.clear();
            write_data(
                &mut self.data,
                Stamp {
                    t,
                    s: self.seq[slot],
                    p: publisher,
                    c: self.channels[slot],
                },
                size,
            );
            let id = p.queue(&self.names[slot], &self.data);
            self.outstanding.insert(id, (slot, t));
        }
    }

    /// Applies acknowledgements; returns how many were for our publications.
    fn settle(&mut self, acks: &[Ack], t: &mut Tally) -> u64 {
        if acks.is_empty() {
            return 0;
        }
        let now = mono_ns();
        t.ack_span.see(now);
        let mut n = 0;
        for a in acks {
            if let Some((slot, sent)) = self.outstanding.remove(&a.id) {
                n += 1;
                if a.ok {
                    t.publish_acked += 1;
                    t.ack_latency.record(now.saturating_sub(sent));
                } else {
                    self.refused[slot] += 1;
                }
            } else {
                t.protocol_errors += 1;
            }
        }
        if self.start_ns > 0 && now >= self.start_ns {
            bump(&mut t.acks_by_s, (now - self.start_ns) / 1_000_000_000, n);
        }
        n
    }
}

/// Waits for the window while answering server pings (a publisher that
/// does not read would be cut for a missing pong before it starts).
async fn wait_go(h: &mut Hand, p: &mut Publisher) -> anyhow::Result<Option<Window>> {
    let mut acks = Vec::new();
    loop {
        tokio::select! {
            w = h.wait_go() => return Ok(w),
            r = p.read_acks(&mut acks) => {
                r?;
                h.tally.borrow_mut().protocol_errors += acks.len() as u64;
                acks.clear();
                p.flush().await?;
            }
        }
    }
}

async fn publish_loop(
    h: &mut Hand,
    p: &mut Publisher,
    st: &mut Streams,
    load: &PublisherLoad,
    publisher: u32,
    w: Window,
) -> anyhow::Result<()> {
    let window = load.in_flight.max(1);
    // Publications this publisher may still issue (`None`: no count).
    let mut quota = load.quota(publisher as usize);
    let (burst, mut even) = match (load.rate, load.pace) {
        (None, _) => (None, None),
        (Some(r), Pace::Burst) => (Some(r / load.publishers.max(1) as f64), None),
        (Some(r), Pace::Even) => {
            let s = Schedule::new(w.start_ns, r, load.publishers, publisher as usize);
            (None, Some((s, Timer::new()?)))
        }
    };
    let end = tokio::time::sleep_until(deadline(w.end_ns));
    tokio::pin!(end);
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut scheduled = 0u64;
    let mut acks = Vec::new();
    let mut sent = 0u64;
    let closed_loop = load.rate.is_none();
    // Issues up to `want` publications: as many as the in-flight cap and
    // the quota allow; what the cap holds back of a due schedule is the
    // rate deficit (`deficit`), what the quota holds back is not owed.
    let mut issue = |st: &mut Streams, p: &mut Publisher, want: u64, deficit: bool| {
        let want = quota.map_or(want, |q| want.min(q));
        let room = (window - st.outstanding.len().min(window)) as u64;
        let n = want.min(room);
        let mut t = h.tally.borrow_mut();
        if deficit {
            t.rate_deficit += want - n;
        }
        st.issue(p, n, publisher, load.size, &mut t);
        if let Some(q) = quota.as_mut() {
            *q -= n;
        }
        (n, quota == Some(0))
    };
    let mut spent = false;
    if closed_loop {
        let (n, s) = issue(st, p, window as u64, false);
        (sent, spent) = (n, s);
        p.flush().await?;
    }
    loop {
        if spent && st.outstanding.is_empty() {
            break;
        }
        acks.clear();
        let next_due = even.as_ref().map_or(u64::MAX, |(s, _)| s.next_due_ns());
        tokio::select! {
            biased;
            _ = &mut end => break,
            r = p.read_acks(&mut acks) => {
                r?;
                st.settle(&acks, &mut h.tally.borrow_mut());
                if closed_loop && !spent && mono_ns() < w.end_ns {
                    let (n, s) = issue(st, p, window as u64, false);
                    sent += n;
                    spent = s;
                }
                p.flush().await?;
            }
            r = async { even.as_mut().expect("even pacing").1.until(next_due).await },
                if even.is_some() && next_due < w.end_ns && !spent =>
            {
                r?;
                let (s, _) = even.as_mut().expect("even pacing");
                let due = s.take_due(mono_ns(), w.end_ns);
                let (n, s) = issue(st, p, due, true);
                sent += n;
                spent = s;
                p.flush().await?;
            }
            _ = tick.tick(), if burst.is_some() && !spent => {
                let rate = burst.unwrap_or_default();
                let elapsed = mono_ns().saturating_sub(w.start_ns) as f64 / 1e9;
                let due = ((elapsed * rate) as u64).saturating_sub(scheduled);
                scheduled += due;
                let (n, s) = issue(st, p, due, true);
                sent += n;
                spent = s;
                p.flush().await?;
            }
        }
        h.live.sent.fetch_add(std::mem::take(&mut sent), Relaxed);
    }
    // Window over: collect the last acknowledgements.
    let drain = tokio::time::sleep(Duration::from_secs_f64(load.drain_max_s));
    tokio::pin!(drain);
    while !st.outstanding.is_empty() {
        acks.clear();
        tokio::select! {
            _ = &mut drain => {
                let n = st.outstanding.len();
                h.tally.borrow_mut().error(format!("{n} publications never acknowledged"));
                break;
            }
            r = p.read_acks(&mut acks) => {
                r?;
                st.settle(&acks, &mut h.tally.borrow_mut());
                p.flush().await?;
            }
        }
    }
    Ok(())
}

/// What a subscriber knows of the publications it received: one sequence
/// check per stream, and (for recovery) the stream position.
#[derive(Default)]
pub struct Receiver {
    streams: StreamChecks,
    /// Follow the position (storm): the last offset received.
    pub track_offset: bool,
    pub offset: u64,
    /// Epoch of the subscription, from the last subscribe reply.
    pub epoch: String,
    /// A fossil subscriber's last payload (None: a plain subscriber).
    pub delta: Option<Vec<u8>>,
}

impl Receiver {
    pub fn tracking() -> Receiver {
        Receiver {
            track_offset: true,
            ..Receiver::default()
        }
    }

    /// One of our publications was read at `now` (second `sec` of the run),
    /// having reached the socket at `rx` (kernel timestamp, if kept).
    pub fn deliver(
        &mut self,
        t: &mut Tally,
        sec: Option<u64>,
        now: u64,
        rx: Option<u64>,
        s: Stamp,
    ) {
        t.record_latency(sec, now.saturating_sub(s.t));
        if let Some(rx) = rx {
            t.socket_latency.record(rx.saturating_sub(s.t));
            t.read_delay.record(now.saturating_sub(rx));
        }
        self.streams.get(stream_key(s.c, s.p)).see(s.s);
    }

    /// Adds this subscriber's distinct deliveries, duplicates and reorderings
    /// to the tally (once, at the end).
    pub fn settle_into(&self, t: &mut Tally) {
        for (k, s) in self.streams.keys.iter().zip(&self.streams.checks) {
            *t.stream_received.entry(*k).or_default() += s.distinct();
            t.duplicates += s.duplicates;
            t.out_of_order += s.out_of_order;
        }
    }
}

/// Second of the run `now` falls in (`None` before the window).
pub fn second_of(h: &Hand, now: u64) -> Option<u64> {
    h.window()
        .and_then(|w| now.checked_sub(w.start_ns))
        .map(|d| d / 1_000_000_000)
}

/// Why `receive` returned.
#[derive(Debug)]
pub enum Ended {
    /// The worker said stop.
    Stop,
    /// The drop signal fired (storm, `--drop client`).
    Drop,
    /// The connection went away: a close frame or, on HTTP, the stream's
    /// end after a disconnect push (with its code), EOF or an error.
    Lost { why: String, code: Option<u16> },
}

fn lost(why: impl std::fmt::Display) -> Ended {
    Ended::Lost {
        why: why.to_string(),
        code: None,
    }
}

/// Receives publications until stop, the connection's end, or (when
/// `drops` is given) the next drop signal; answers pings on the way.
pub async fn receive(
    h: &mut Hand,
    c: &mut Conn,
    rx: &mut Receiver,
    mut drops: Option<&mut watch::Receiver<u32>>,
) -> Ended {
    loop {
        // What is buffered first: the login may have read past its replies.
        let (got, ended) = take_batch(h, c, rx);
        h.live.received.fetch_add(got, Relaxed);
        if let Some(e) = ended {
            return e;
        }
        if let Err(e) = c.flush().await {
            return lost(e);
        }
        c.shrink_idle();
        tokio::select! {
            _ = h.until_stop() => return Ended::Stop,
            r = async { drops.as_mut().expect("drops").changed().await }, if drops.is_some() => {
                match r {
                    Ok(()) => return Ended::Drop,
                    Err(_) => drops = None,
                }
            }
            r = c.read_some(64 << 10) => {
                match r {
                    Ok(0) => return lost("server closed the connection"),
                    Ok(_) => {}
                    Err(e) => return lost(e),
                }
            }
        }
    }
}

/// Decodes everything buffered: deliveries recorded, pings answered
/// (queued). Returns the deliveries and, if the batch ended the
/// connection, how.
fn take_batch(h: &Hand, c: &mut Conn, rx: &mut Receiver) -> (u64, Option<Ended>) {
    let now = mono_ns();
    let sec = second_of(h, now);
    let rx_at = c.rx_mono_ns();
    let (mut got, mut pings, mut bad) = (0u64, 0u64, 0u64);
    let mut ended = None;
    let mut t = h.tally.borrow_mut();
    loop {
        let text = match c.next() {
            Ok(Some(Incoming::Text(p))) => p,
            Ok(Some(Incoming::Closed { why, code })) => {
                ended = Some(Ended::Lost { why, code });
                break;
            }
            Ok(Some(Incoming::Binary)) => continue,
            Ok(None) => break,
            Err(e) => {
                ended = Some(lost(e));
                break;
            }
        };
        for line in text.lines() {
            match classify(line) {
                Line::Push { stamp: None } if rx.delta.is_some() => {
                    t.push_bytes += line.len() as u64;
                    let base = rx.delta.as_mut().expect("delta");
                    match delta_stamp(line, base) {
                        Some(s) => {
                            rx.deliver(&mut t, sec, now, rx_at, s);
                            got += 1;
                        }
                        None => bad += 1,
                    }
                }
                Line::Push { stamp: Some(s) } => {
                    t.push_bytes += line.len() as u64;
                    rx.deliver(&mut t, sec, now, rx_at, s);
                    if rx.track_offset {
                        if let Some(o) = pub_offset(line) {
                            rx.offset = o;
                        }
                    }
                    got += 1;
                }
                Line::Ping => {
                    c.pong();
                    pings += 1;
                }
                Line::Push { stamp: None } | Line::Reply { .. } => {}
                Line::Other => bad += 1,
            }
        }
    }
    t.delivered += got;
    if got > 0 {
        t.delivery_span.see(now);
    }
    t.pings += pings;
    t.protocol_errors += bad;
    (got, ended)
}

/// One subscriber's sequence checks, one per stream it receives (usually
/// one: a subscriber is on one channel, which has one publisher when
/// P <= C). A vector with the last hit first in line: cheaper per delivery
/// than hashing.
#[derive(Default)]
struct StreamChecks {
    keys: Vec<u64>,
    checks: Vec<SeqCheck>,
    last: usize,
}

impl StreamChecks {
    fn get(&mut self, key: u64) -> &mut SeqCheck {
        if self.keys.get(self.last) != Some(&key) {
            self.last = match self.keys.iter().position(|&k| k == key) {
                Some(i) => i,
                None => {
                    self.keys.push(key);
                    self.checks.push(SeqCheck::default());
                    self.keys.len() - 1
                }
            };
        }
        &mut self.checks[self.last]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(publishers: usize, channels: usize, count: Option<u64>) -> PublisherLoad {
        PublisherLoad {
            channels,
            publishers,
            rate: None,
            pace: Pace::Even,
            in_flight: 1,
            size: 10,
            publish: PublishConfig::client(),
            count,
            drain_max_s: 1.0,
        }
    }

    #[test]
    fn channels_and_quotas_per_publisher() {
        let l = load(3, 7, Some(10));
        assert_eq!(l.publisher_channels(0), vec![0, 3, 6]);
        assert_eq!(l.publisher_channels(2), vec![2, 5]);
        let q: Vec<u64> = (0..3).map(|j| l.quota(j).unwrap()).collect();
        assert_eq!(q.iter().sum::<u64>(), 10);
        assert!(q.iter().all(|&x| x == 3 || x == 4));
        assert_eq!(load(4, 2, None).publisher_channels(3), vec![1]);
        assert_eq!(load(4, 2, None).quota(1), None);
    }
}
