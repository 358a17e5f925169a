//! `storm`: the reconnect storm. N subscribers connect and subscribe with
//! recovery (`recoverable: true`; subscriber `i` on channel `i % C`),
//! publishers run at a fixed rate for the whole window (the `pubsub`
//! publishers, sequence-numbered per stream), and after `warmup_s` every
//! connection is dropped at once, `drops` times, `drop_every_s` apart:
//!
//! - `api`: one server API call, `disconnect` for `drop_user` (the empty
//!   user: every anonymous connection of an `--insecure` server) with
//!   `drop_code` (3011, force reconnect), made by worker 0 of the run;
//! - `client`: every subscriber resets its own socket (works with any
//!   server).
//!
//! A dropped subscriber waits a random delay in
//! [`reconnect_min_s`, `reconnect_max_s`] (doubling up to the maximum after
//! a failed attempt), connects and subscribes again with `recover: true`
//! and the last offset and epoch it saw. The subscribe reply says whether
//! the server recovered (and carries the missed publications). Deliveries
//! are checked per stream across all of a subscriber's connections, so a
//! publication is lost only if it never arrived on any of them.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;

use super::centrifuge_login_with;
use super::fanout::count_subscriber;
use super::pubsub::{
    finish_window, receive, second_of, spawn_publishers, Ended, PublisherLoad, Receiver,
};
use crate::centrifuge::{
    classify, pub_offset, subscribe_cmd, subscribe_recover_cmd, subscribe_reply, Line,
};
use crate::client::Rng;
use crate::publish::http::Api;
use crate::stats::{bump, mono_ns, Round, Tally};
use crate::transport::Conn;
use crate::worker::{deadline, Crew, Hand, WorkerCtx};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum DropKind {
    /// The server API's `disconnect` (ringcast, Centrifugo): one call drops
    /// every connection of the user, with a reconnect code.
    Api,
    /// The bench resets its own sockets (any server).
    Client,
}

#[derive(Debug, Clone, Serialize)]
pub struct StormConfig {
    pub conns: usize,
    #[serde(flatten)]
    pub load: PublisherLoad,
    pub drop: DropKind,
    /// `drop: api`: the server API.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api: Option<Api>,
    /// `drop: api`: the user whose connections are dropped ("" = anonymous).
    pub drop_user: String,
    /// `drop: api`: the close code asked for (3000–3499: reconnect).
    pub drop_code: u16,
    /// Seconds from the window's start to the first drop.
    pub warmup_s: f64,
    pub drops: usize,
    pub drop_every_s: f64,
    pub reconnect_min_s: f64,
    pub reconnect_max_s: f64,
    /// Resubscribe with `recover` (else a plain subscribe).
    pub recover: bool,
    /// After the window: stop once no delivery arrived for this long.
    pub quiet_s: f64,
}

impl StormConfig {
    /// When drop `k` (0-based) happens.
    pub fn drop_ns(&self, start_ns: u64, k: usize) -> u64 {
        start_ns + ((self.warmup_s + k as f64 * self.drop_every_s) * 1e9) as u64
    }

    /// Drop rounds begun by `now_ns`.
    fn rounds_by(&self, start_ns: u64, now_ns: u64) -> u32 {
        (0..self.drops)
            .filter(|&k| self.drop_ns(start_ns, k) <= now_ns)
            .count() as u32
    }

    /// The subscribe command: recoverable, and recovering from `pos`.
    fn subscribe(&self, channel: &str, pos: Option<(u64, &str)>) -> Vec<u8> {
        if self.recover {
            subscribe_recover_cmd(2, channel, pos)
        } else {
            subscribe_cmd(2, channel)
        }
    }
}

/// What a worker's subscribers share.
struct Shared {
    cfg: StormConfig,
    token: Option<String>,
    /// Subscribers of this worker currently dropped and not yet back.
    down: Cell<usize>,
}

pub async fn run(mut ctx: WorkerCtx, cfg: StormConfig) -> Tally {
    let mut crew = Crew::new(&ctx);
    crew.tally
        .borrow_mut()
        .rounds
        .resize_with(cfg.drops, Round::default);
    // The drop round in progress (0: none yet), in every worker.
    let (round_tx, round_rx) = watch::channel(0u32);
    let plan = ctx.plan.clone();
    let shared = Rc::new(Shared {
        cfg: cfg.clone(),
        token: plan.token.clone(),
        down: Cell::new(0),
    });
    for index in ctx.share.conns.clone() {
        let channel = (index % cfg.load.channels.max(1)) as u32;
        let name = plan.channel(channel as usize);
        let (sh, rounds) = (shared.clone(), round_rx.clone());
        crew.spawn(move |hand| subscriber(hand, index, channel, name, sh, rounds));
    }
    drop(round_rx);
    let running = spawn_publishers(&mut crew, &ctx, &cfg.load, cfg.conns);
    crew.setup_done().await;
    if let Some(w) = ctx.ready().await {
        crew.go(w);
        let tally = crew.tally.clone();
        let caller = ctx.global_id == 0;
        let timeout = plan.connect_timeout;
        let drops = async {
            for k in 0..cfg.drops {
                tokio::time::sleep_until(deadline(cfg.drop_ns(w.start_ns, k))).await;
                round_tx.send_replace(k as u32 + 1);
                if let (DropKind::Api, Some(api), true) = (cfg.drop, &cfg.api, caller) {
                    let body = serde_json::json!({
                        "user": cfg.drop_user,
                        "disconnect": {"code": cfg.drop_code, "reason": "bench storm"},
                    });
                    let body = body.to_string();
                    let call = api.call("disconnect", body.as_bytes());
                    let r = match tokio::time::timeout(timeout, call).await {
                        Ok(r) => r,
                        Err(_) => Err(anyhow::anyhow!("timed out after {timeout:?}")),
                    };
                    if let Err(e) = r {
                        tally.borrow_mut().error(format!("drop {}: {e:#}", k + 1));
                    }
                }
            }
        };
        let busy = || shared.down.get() > 0;
        let finish = finish_window(&ctx, w, &cfg.load, &running, busy, cfg.quiet_s);
        tokio::join!(drops, finish);
    }
    crew.finish().await
}

async fn subscriber(
    mut h: Hand,
    index: usize,
    channel: u32,
    name: String,
    sh: Rc<Shared>,
    mut rounds: watch::Receiver<u32>,
) {
    let cfg = &sh.cfg;
    let mut rx = Receiver::tracking();
    let cmd = cfg.subscribe(&name, None);
    let first = h
        .dial_conn(index, |c| login(c, sh.token.clone(), cmd))
        .await;
    h.setup_done();
    let Some((mut c, replies)) = first else {
        return;
    };
    count_subscriber(&h, channel);
    absorb(&h, &mut rx, &replies, false);
    loop {
        let drops = (cfg.drop == DropKind::Client).then_some(&mut rounds);
        let ended = receive(&mut h, &mut c, &mut rx, drops).await;
        let noticed = mono_ns();
        let round = match ended {
            Ended::Stop => {
                c.close().await;
                break;
            }
            Ended::Drop => {
                c.abort();
                Some(*rounds.borrow())
            }
            Ended::Lost { why, code } => {
                drop(c);
                // Rounds by the clock, not the signal: another worker's
                // API call may close this connection before this worker
                // has run its own drop timer.
                let r = h.window().map_or(0, |w| cfg.rounds_by(w.start_ns, noticed));
                if code.is_some_and(|c| (3500..=3999).contains(&c)) {
                    // Terminal: a client must not reconnect.
                    h.disconnected(why);
                    break;
                }
                if cfg.drop == DropKind::Api && r > 0 && code == Some(cfg.drop_code) {
                    Some(r)
                } else {
                    h.disconnected(why);
                    None
                }
            }
        };
        // Round `r` (1-based) is `rounds[r - 1]`; `None`: not a drop of ours.
        let round = round.filter(|&r| r > 0).map(|r| r as usize - 1);
        if let Some(r) = round {
            h.tally.borrow_mut().rounds[r].n.dropped += 1;
        }
        sh.down.set(sh.down.get() + 1);
        let back = reconnect(&mut h, index, &name, &sh, &mut rx, round, noticed).await;
        sh.down.set(sh.down.get() - 1);
        match back {
            Some(next) => {
                c = next;
                // A round that fired while this connection was down is not
                // one to drop it for.
                rounds.borrow_and_update();
            }
            None => break,
        }
    }
    rx.settle_into(&mut h.tally.borrow_mut());
}

/// Connect, then the subscribe `cmd`; returns the connection and the lines
/// that came back (the subscribe reply, any early push).
async fn login(
    c: Conn,
    token: Option<String>,
    cmd: Vec<u8>,
) -> anyhow::Result<(Conn, Vec<Vec<u8>>)> {
    let mut seen = Vec::new();
    let c = centrifuge_login_with(c, token.as_deref(), &[cmd], |l| seen.push(l.to_vec())).await?;
    Ok((c, seen))
}

/// What the server said about a resubscription's recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recovery {
    NotAsked,
    Recovered,
    Unrecovered,
    /// The reply said nothing about it: a server without recovery.
    Ignored,
}

/// Takes in the lines of a (re)subscribe: the position and the recovered
/// publications from the reply, and any push.
fn absorb(h: &Hand, rx: &mut Receiver, lines: &[Vec<u8>], asked: bool) -> Recovery {
    let now = mono_ns();
    let sec = second_of(h, now);
    let mut status = Recovery::NotAsked;
    let mut got = 0u64;
    let mut t = h.tally.borrow_mut();
    for line in lines {
        if let Some(r) = subscribe_reply(line) {
            for (stamp, _) in &r.publications {
                if let Some(s) = stamp {
                    rx.deliver(&mut t, sec, now, None, *s);
                    t.recovered_pubs += 1;
                    got += 1;
                }
            }
            if let Some(e) = r.epoch {
                rx.epoch = e;
            }
            // The reply's offset is the stream's top: where this
            // subscription is now, recovered or not.
            let last = r.publications.iter().filter_map(|p| p.1).max();
            if let Some(o) = r.offset.or(last) {
                rx.offset = o;
            }
            status = match (asked, r.was_recovering, r.recovered) {
                (false, _, _) => Recovery::NotAsked,
                (true, true, true) => Recovery::Recovered,
                (true, true, false) => Recovery::Unrecovered,
                (true, false, _) => Recovery::Ignored,
            };
        } else if let Line::Push { stamp: Some(s) } = classify(line) {
            rx.deliver(&mut t, sec, now, None, s);
            if let Some(o) = pub_offset(line) {
                rx.offset = o;
            }
            got += 1;
        }
    }
    t.delivered += got;
    if got > 0 {
        t.delivery_span.see(now);
    }
    drop(t);
    h.live
        .received
        .fetch_add(got, std::sync::atomic::Ordering::Relaxed);
    status
}

/// A random delay in [lo, hi] seconds (`lo` when hi < lo).
fn jitter(rng: &mut Rng, lo: f64, hi: f64) -> Duration {
    let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    Duration::from_secs_f64(lo + (hi - lo).max(0.0) * u)
}

/// Reconnects and resubscribes after a drop (retrying until stopped);
/// records the round's figures. `None` when stopped first.
async fn reconnect(
    h: &mut Hand,
    index: usize,
    name: &str,
    sh: &Shared,
    rx: &mut Receiver,
    round: Option<usize>,
    noticed: u64,
) -> Option<Conn> {
    let cfg = &sh.cfg;
    let hi = cfg.reconnect_max_s.max(cfg.reconnect_min_s);
    let mut lo = cfg.reconnect_min_s;
    loop {
        let delay = jitter(&mut h.rng, lo, hi);
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = h.until_stop() => return None,
        }
        let asked = cfg.recover;
        let cmd = cfg.subscribe(name, Some((rx.offset, rx.epoch.as_str())));
        match h.redial(index, |c| login(c, sh.token.clone(), cmd)).await {
            Ok((c, lines)) => {
                let status = absorb(h, rx, &lines, asked);
                let now = mono_ns();
                let mut t = h.tally.borrow_mut();
                if let Some(sec) = second_of(h, now) {
                    bump(&mut t.resubscribed_by_s, sec, 1);
                }
                if let Some(r) = round {
                    let r = &mut t.rounds[r];
                    r.n.resubscribed += 1;
                    r.last_ns = r.last_ns.max(now);
                    r.reconnect.record(now.saturating_sub(noticed));
                    match status {
                        Recovery::Recovered => r.n.recovered += 1,
                        Recovery::Unrecovered => r.n.unrecovered += 1,
                        Recovery::Ignored => r.n.recovery_ignored += 1,
                        Recovery::NotAsked => {}
                    }
                }
                return Some(c);
            }
            Err(e) => {
                let mut t = h.tally.borrow_mut();
                if let Some(r) = round {
                    t.rounds[r].n.failed_attempts += 1;
                }
                t.error(format!("reconnect: {e:#}"));
                // Back off: after a failure, wait in the upper half.
                lo = lo.max(hi / 2.0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_rounds_by_the_clock() {
        let cfg = StormConfig {
            conns: 1,
            load: PublisherLoad {
                channels: 1,
                publishers: 1,
                rate: Some(1.0),
                pace: crate::pace::Pace::Even,
                in_flight: 1,
                size: 10,
                publish: crate::publish::PublishConfig::client(),
                count: None,
                drain_max_s: 1.0,
            },
            drop: DropKind::Client,
            api: None,
            drop_user: String::new(),
            drop_code: 3011,
            warmup_s: 2.0,
            drops: 3,
            drop_every_s: 1.5,
            reconnect_min_s: 0.1,
            reconnect_max_s: 1.0,
            recover: true,
            quiet_s: 1.0,
        };
        let s = 1_000_000_000;
        assert_eq!(cfg.drop_ns(s, 1), s + 3_500_000_000);
        assert_eq!(cfg.rounds_by(s, s + 1_999_999_999), 0);
        assert_eq!(cfg.rounds_by(s, s + 2_000_000_000), 1);
        assert_eq!(cfg.rounds_by(s, s + 4_000_000_000), 2);
        assert_eq!(cfg.rounds_by(s, s + 60_000_000_000), 3);
        let v: serde_json::Value =
            serde_json::from_slice(&cfg.subscribe("c", Some((4, "e")))).unwrap();
        assert_eq!(v["subscribe"]["offset"], 4);
    }

    #[test]
    fn jitter_stays_in_bounds() {
        let mut rng = Rng::new(7);
        for _ in 0..1000 {
            let d = jitter(&mut rng, 0.1, 0.5).as_secs_f64();
            assert!((0.1..=0.5).contains(&d), "{d}");
        }
        assert_eq!(jitter(&mut rng, 0.2, 0.1), Duration::from_secs_f64(0.2));
    }
}
