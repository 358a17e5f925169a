//! Server pings: every ping interval each connected client gets `{}`; one that
//! has not answered within the pong timeout is closed with 3012. A connection
//! that never sends `connect` is closed as stale (3502). The shard's sessions
//! are visited in slices spread over the interval (`TICK`).

use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::session::Session;
use super::ClientService;
use crate::protocol::codes;
use crate::shard::framing::FrameSet;
use crate::ws::frame::{encode, OpCode};

/// Pings go out in slices, not all at once: every `TICK` the sessions of
/// one slice (the slot in their connection id, `outbox::slot_of`, modulo
/// the number of slices), so each session
/// still gets a ping every ping interval but a shard never sends one to
/// every connection in the same pass (10,000 connections on a shard were
/// ~70 ms of sends in one go, a latency spike every 25 s for everything
/// else on the shard).
const TICK: Duration = Duration::from_millis(100);

/// How the ping interval is cut: the number of slices, the time between
/// them, and after how many slices a ping's pong is due.
fn slicing(ping_interval: Duration, pong_timeout: Duration) -> (u64, Duration, usize) {
    let slices = (ping_interval.as_millis() / TICK.as_millis()).max(1) as u64;
    let tick = ping_interval / slices as u32;
    let pong_ticks = pong_timeout.as_nanos().div_ceil(tick.as_nanos()).max(1) as usize;
    (slices, tick, pong_ticks)
}

pub async fn sweep_loop(svc: ClientService) {
    let (hub, opts) = (svc.hub.clone(), svc.options().clone());
    let refresh_proxy = svc.refresh_proxy();
    let ping: Bytes = encode(OpCode::Text, b"{}");
    let pong_timeout = opts.pong_timeout.min(opts.ping_interval / 2);
    let (slices, tick, pong_ticks) = slicing(opts.ping_interval, pong_timeout);
    // The sessions pinged by each of the last `pong_ticks` slices, oldest
    // first: their pong is due when they leave.
    let mut waiting: VecDeque<Vec<Rc<Session>>> = VecDeque::with_capacity(pong_ticks + 1);
    let mut next = Instant::now() + tick;
    for k in (0..slices).cycle() {
        monoio::time::sleep_until(next.into()).await;
        // Late (a long pass): the next slice a full tick from now.
        next = (next + tick).max(Instant::now());
        if waiting.len() >= pong_ticks {
            for s in waiting.pop_front().unwrap_or_default() {
                if s.is_connected() && s.awaiting_pong.get() && !s.conn.is_closing() {
                    s.conn
                        .close_with(codes::NO_PONG.code, codes::NO_PONG.reason);
                }
            }
        }
        let pings = FrameSet::new(&ping);
        let sessions = super::registry::Registry::of(&hub).slice(k, slices);
        let now = crate::auth::unix_now();
        let mut pinged = Vec::with_capacity(sessions.len());
        for s in sessions {
            let expires = s.expires_at();
            if s.is_connected() && expires > 0 && now >= expires {
                match refresh_proxy {
                    // The server refreshes: ask the application's backend.
                    Some(p) => svc.proxy_refresh(&s, p),
                    // Credentials ran out without a refresh (Centrifugo: 3005).
                    None => s.conn.close_with(
                        codes::CONNECTION_EXPIRED.code,
                        codes::CONNECTION_EXPIRED.reason,
                    ),
                }
            }
            if s.is_connected() {
                if s.conn.is_closing() {
                    continue;
                }
                svc.proxy_sub_refresh_due(&s, now);
                // Unidirectional clients get pings and never answer them.
                let answers = !s.conn.framing().is_unidirectional();
                s.awaiting_pong.set(answers);
                s.conn.send_set(&pings);
                if answers {
                    pinged.push(s);
                }
            } else if !svc.proxy_connecting(&s) {
                // (One waiting for the connect proxy is not stale: the
                // proxy's timeout bounds that wait.)
                let n = s.unconnected_sweeps.get() + 1;
                s.unconnected_sweeps.set(n);
                if n >= 2 {
                    s.conn.close_with(codes::STALE.code, codes::STALE.reason);
                }
            }
        }
        waiting.push_back(pinged);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_is_cut_in_ticks_of_about_100_ms() {
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        // Default: 25 s, pong within 8 s.
        assert_eq!(slicing(s(25), s(8)), (250, ms(100), 80));
        // The tests' 1 s interval, pong within 0.3 s.
        assert_eq!(slicing(s(1), ms(300)), (10, ms(100), 3));
        // A pong timeout between ticks is rounded up, never down.
        assert_eq!(slicing(s(1), ms(250)), (10, ms(100), 3));
        assert_eq!(slicing(s(1), ms(1)), (10, ms(100), 1));
    }
}
