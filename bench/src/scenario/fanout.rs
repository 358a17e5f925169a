//! `fanout`: S subscribers over C channels, P publishers. Every publication
//! carries its send time (CLOCK_MONOTONIC ns), its stream (channel,
//! publisher) and a sequence number in that stream; subscribers measure
//! publish → receive latency and check each stream for gaps, duplicates and
//! reordering. Lost = publications × subscribers of their channel − distinct
//! deliveries, summed over streams after every process has reported.
//!
//! Subscriber `i` subscribes to channel `i % C`. With P ≤ C publisher `j`
//! publishes round-robin to channels `j, j+P, j+2P…`; with P > C publisher
//! `j` publishes to channel `j % C`. `--rate R` is the total over all
//! publishers (open loop, bounded by `--in-flight`), paced by `--pace`
//! (`even`: evenly spaced, sub-millisecond; `burst`: whatever is due every
//! millisecond, see `pace.rs`); `--max` publishes as fast as
//! acknowledgements come back with `--in-flight` outstanding each.
//!
//! Besides the counts, the run keeps the first/last time of publications,
//! acknowledgements and deliveries, so rates are given over the span in
//! which things actually happened (a server that queues without bound
//! keeps delivering long after the publishing window).

use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use ringcast::ws::Message;
use serde::Serialize;

use super::centrifuge_login;
use crate::centrifuge::{classify, lines, write_data, Line, Stamp};
use crate::pace::{Pace, Schedule, Timer};
use crate::publish::{Ack, PublishConfig, Publisher};
use crate::stats::{mono_ns, stream_key, SeqCheck, Tally};
use crate::worker::{deadline, Crew, Hand, Window, WorkerCtx};

#[derive(Debug, Clone, Serialize)]
pub struct FanoutConfig {
    pub subscribers: usize,
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
    /// After the window: stop once no delivery arrived for this long…
    pub quiet_s: f64,
    /// …or after this long at most.
    pub drain_max_s: f64,
}

impl FanoutConfig {
    /// Channel indices publisher `j` publishes to.
    pub fn publisher_channels(&self, j: usize) -> Vec<u32> {
        let (p, c) = (self.publishers.max(1), self.channels.max(1));
        if p <= c {
            (j..c).step_by(p).map(|x| x as u32).collect()
        } else {
            vec![(j % c) as u32]
        }
    }
}

pub async fn run(mut ctx: WorkerCtx, cfg: FanoutConfig) -> Tally {
    let mut crew = Crew::new(&ctx);
    let plan = ctx.plan.clone();
    for index in ctx.share.conns.clone() {
        let channel = (index % cfg.channels.max(1)) as u32;
        let name = plan.channel(channel as usize);
        let token = plan.token.clone();
        crew.spawn(move |hand| subscriber(hand, index, channel, name, token));
    }
    let publishers_running = Rc::new(Cell::new(ctx.share.pubs.len()));
    for index in ctx.share.pubs.clone() {
        let j = index - cfg.subscribers;
        let (cfg, plan, running) = (cfg.clone(), plan.clone(), publishers_running.clone());
        crew.spawn(move |hand| async move {
            publisher(hand, index, j, cfg, plan).await;
            running.set(running.get() - 1);
        });
    }
    crew.setup_done().await;
    if let Some(w) = ctx.ready().await {
        crew.go(w);
        tokio::time::sleep_until(deadline(w.end_ns)).await;
        // Publishers stop at the window's end and collect their last acks;
        // then deliveries still in flight are drained until quiet.
        let drain_end = tokio::time::Instant::now() + Duration::from_secs_f64(cfg.drain_max_s);
        while publishers_running.get() > 0 && tokio::time::Instant::now() < drain_end {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let quiet = Duration::from_secs_f64(cfg.quiet_s);
        loop {
            let before = ctx.live.received.load(Relaxed);
            tokio::time::sleep(quiet.min(drain_end - tokio::time::Instant::now().min(drain_end)))
                .await;
            if ctx.live.received.load(Relaxed) == before || tokio::time::Instant::now() >= drain_end
            {
                break;
            }
        }
    }
    crew.finish().await
}

async fn subscriber(mut h: Hand, index: usize, channel: u32, name: String, token: Option<String>) {
    let c = h
        .dial(index, |c| async move {
            centrifuge_login(c, token.as_deref(), std::slice::from_ref(&name)).await
        })
        .await;
    h.setup_done();
    let Some(mut c) = c else { return };
    *h.tally
        .borrow_mut()
        .channel_subscribers
        .entry(channel)
        .or_default() += 1;
    let mut streams = StreamChecks::default();
    let r = receive(&mut h, &mut c, &mut streams).await;
    {
        let mut t = h.tally.borrow_mut();
        for (k, s) in streams.keys.iter().zip(&streams.checks) {
            *t.stream_received.entry(*k).or_default() += s.distinct();
            t.duplicates += s.duplicates;
            t.out_of_order += s.out_of_order;
        }
    }
    match r {
        Ok(()) => c.close().await,
        Err(e) => h.disconnected(e),
    }
}

async fn receive(
    h: &mut Hand,
    c: &mut crate::client::WsClient,
    streams: &mut StreamChecks,
) -> anyhow::Result<()> {
    loop {
        tokio::select! {
            _ = h.until_stop() => return Ok(()),
            r = c.read_some(64 << 10) => {
                if r? == 0 {
                    anyhow::bail!("server closed the connection");
                }
                let now = mono_ns();
                // Second of the run this read falls in (None before the window).
                let sec = h
                    .window()
                    .and_then(|w| now.checked_sub(w.start_ns))
                    .map(|d| d / 1_000_000_000);
                let got = {
                let (mut got, mut pings, mut bad) = (0u64, 0u64, 0u64);
                let mut t = h.tally.borrow_mut();
                while let Some(m) = c.next_message()? {
                    let text = match m {
                        Message::Text(p) => p,
                        Message::Close(f) => anyhow::bail!("server sent close {f:?}"),
                        _ => continue,
                    };
                    for line in lines(&text) {
                        match classify(line) {
                            Line::Push { stamp: Some(s) } => {
                                t.record_latency(sec, now.saturating_sub(s.t));
                                streams.get(stream_key(s.c, s.p)).see(s.s);
                                got += 1;
                            }
                            Line::Ping => {
                                c.queue(ringcast::ws::OpCode::Text, b"{}");
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
                got
                };
                h.live.received.fetch_add(got, Relaxed);
                c.flush().await?;
                c.shrink_idle();
            }
        }
    }
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

/// One publisher's bookkeeping.
struct Streams {
    channels: Vec<u32>,
    names: Vec<String>,
    /// Last sequence number issued per channel slot.
    seq: Vec<u64>,
    /// Publications refused by the server per slot (not owed to anyone).
    refused: Vec<u64>,
    next_slot: usize,
    /// Request id → slot, for publications not yet acknowledged.
    outstanding: HashMap<u64, usize>,
    data: Vec<u8>,
}

async fn publisher(
    mut h: Hand,
    index: usize,
    j: usize,
    cfg: FanoutConfig,
    plan: std::sync::Arc<super::Plan>,
) {
    let p = Publisher::open(&cfg.publish, &mut h, index, &plan).await;
    h.setup_done();
    let Some(mut p) = p else { return };
    let channels = cfg.publisher_channels(j);
    let mut st = Streams {
        names: channels.iter().map(|&c| plan.channel(c as usize)).collect(),
        seq: vec![0; channels.len()],
        refused: vec![0; channels.len()],
        channels,
        next_slot: 0,
        outstanding: HashMap::new(),
        data: Vec::with_capacity(cfg.size + 64),
    };
    let r = match wait_go(&mut h, &mut p).await {
        Ok(Some(w)) => publish_loop(&mut h, &mut p, &mut st, &cfg, j as u32, w).await,
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
            self.outstanding.insert(id, slot);
        }
    }

    /// Applies acknowledgements; returns how many were for our publications.
    fn settle(&mut self, acks: &[Ack], t: &mut Tally) -> u64 {
        if !acks.is_empty() {
            t.ack_span.see(mono_ns());
        }
        let mut n = 0;
        for a in acks {
            if let Some(slot) = self.outstanding.remove(&a.id) {
                n += 1;
                if a.ok {
                    t.publish_acked += 1;
                } else {
                    self.refused[slot] += 1;
                }
            } else {
                t.protocol_errors += 1;
            }
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
    cfg: &FanoutConfig,
    publisher: u32,
    w: Window,
) -> anyhow::Result<()> {
    let window = cfg.in_flight.max(1);
    let (burst, mut even) = match (cfg.rate, cfg.pace) {
        (None, _) => (None, None),
        (Some(r), Pace::Burst) => (Some(r / cfg.publishers.max(1) as f64), None),
        (Some(r), Pace::Even) => {
            let s = Schedule::new(w.start_ns, r, cfg.publishers, publisher as usize);
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
    let closed_loop = cfg.rate.is_none();
    if closed_loop {
        st.issue(
            p,
            window as u64,
            publisher,
            cfg.size,
            &mut h.tally.borrow_mut(),
        );
        sent += window as u64;
        p.flush().await?;
    }
    loop {
        acks.clear();
        // Issues `due` publications, as many as the in-flight cap allows.
        let issue_due = |st: &mut Streams, p: &mut Publisher, due: u64| {
            let room = (window - st.outstanding.len().min(window)) as u64;
            let n = due.min(room);
            let mut t = h.tally.borrow_mut();
            t.rate_deficit += due - n;
            st.issue(p, n, publisher, cfg.size, &mut t);
            n
        };
        let next_due = even.as_ref().map_or(u64::MAX, |(s, _)| s.next_due_ns());
        tokio::select! {
            biased;
            _ = &mut end => break,
            r = p.read_acks(&mut acks) => {
                r?;
                let n = st.settle(&acks, &mut h.tally.borrow_mut());
                if closed_loop && mono_ns() < w.end_ns {
                    st.issue(p, n, publisher, cfg.size, &mut h.tally.borrow_mut());
                    sent += n;
                }
                p.flush().await?;
            }
            r = async { even.as_mut().expect("even pacing").1.until(next_due).await },
                if even.is_some() && next_due < w.end_ns =>
            {
                r?;
                let (s, _) = even.as_mut().expect("even pacing");
                let due = s.take_due(mono_ns(), w.end_ns);
                sent += issue_due(st, p, due);
                p.flush().await?;
            }
            _ = tick.tick(), if burst.is_some() => {
                let rate = burst.unwrap_or_default();
                let elapsed = mono_ns().saturating_sub(w.start_ns) as f64 / 1e9;
                let due = ((elapsed * rate) as u64).saturating_sub(scheduled);
                scheduled += due;
                sent += issue_due(st, p, due);
                p.flush().await?;
            }
        }
        h.live.sent.fetch_add(std::mem::take(&mut sent), Relaxed);
    }
    // Window over: collect the last acknowledgements.
    let drain = tokio::time::sleep(Duration::from_secs_f64(cfg.drain_max_s));
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
