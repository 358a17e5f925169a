//! `echo`: C connections, each keeping W messages of S bytes in flight
//! against an echo server; measures messages/s and round-trip latency.
//!
//! Each connection encodes its frame once (fixed payload, fixed mask) and
//! re-sends the same bytes; one timestamp per read batch; replies to a whole
//! read batch go out in one write. Echo preserves order, so a FIFO of send
//! times gives each reply its round trip.

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;

use ringcast::ws::frame::encode_masked;
use ringcast::ws::{Message, OpCode};
use serde::Serialize;

use crate::client::WsClient;
use crate::stats::{mono_ns, Tally};
use crate::worker::{deadline, Crew, Hand, Window, WorkerCtx};

#[derive(Debug, Clone, Serialize)]
pub struct EchoConfig {
    pub conns: usize,
    pub in_flight: usize,
    pub size: usize,
    /// Text frames instead of binary.
    pub text: bool,
}

pub async fn run(mut ctx: WorkerCtx, cfg: EchoConfig) -> Tally {
    let mut crew = Crew::new(&ctx);
    for index in ctx.share.conns.clone() {
        let cfg = cfg.clone();
        crew.spawn(move |hand| conn(hand, index, cfg));
    }
    crew.setup_done().await;
    if let Some(w) = ctx.ready().await {
        crew.go(w);
        tokio::time::sleep_until(deadline(w.end_ns)).await;
    }
    crew.finish().await
}

async fn conn(mut h: Hand, index: usize, cfg: EchoConfig) {
    let c = h.dial(index, |c| async { Ok(c) }).await;
    h.setup_done();
    let Some(mut c) = c else { return };
    let Some(w) = h.wait_go().await else {
        c.close().await;
        return;
    };
    match pump(&mut h, &mut c, &cfg, w).await {
        Ok(()) => c.close().await,
        Err(e) => h.disconnected(e),
    }
}

async fn pump(h: &mut Hand, c: &mut WsClient, cfg: &EchoConfig, w: Window) -> anyhow::Result<()> {
    let op = if cfg.text {
        OpCode::Text
    } else {
        OpCode::Binary
    };
    let payload = vec![b'x'; cfg.size];
    let frame = encode_masked(true, op, &payload, c.mask());
    let mut sent_at: VecDeque<u64> = VecDeque::with_capacity(cfg.in_flight);
    let now = mono_ns();
    for _ in 0..cfg.in_flight.max(1) {
        c.queue_encoded(&frame);
        sent_at.push_back(now);
    }
    c.flush().await?;
    let mut sent = cfg.in_flight.max(1) as u64;
    h.live.sent.fetch_add(sent, Relaxed);
    let end = tokio::time::sleep_until(deadline(w.end_ns));
    tokio::pin!(end);
    loop {
        tokio::select! {
            biased;
            _ = &mut end => break,
            r = c.read_some(64 << 10) => {
                if r? == 0 {
                    anyhow::bail!("server closed the connection");
                }
                let now = mono_ns();
                let sec = now.checked_sub(w.start_ns).map(|d| d / 1_000_000_000);
                let more = now < w.end_ns;
                let got = {
                    let mut t = h.tally.borrow_mut();
                    let (mut got, mut bad) = (0u64, 0u64);
                    while let Some(m) = c.next_message()? {
                        let len = match m {
                            Message::Binary(p) | Message::Text(p) => p.len(),
                            Message::Close(f) => anyhow::bail!("server sent close {f:?}"),
                            _ => continue,
                        };
                        let Some(t0) = sent_at.pop_front() else {
                            anyhow::bail!("more replies than messages sent");
                        };
                        t.record_latency(sec, now - t0);
                        got += 1;
                        if len != cfg.size {
                            bad += 1;
                        }
                        if more {
                            c.queue_encoded(&frame);
                            sent_at.push_back(now);
                        }
                    }
                    t.received += got;
                    t.mismatched += bad;
                    got
                };
                let resent = if more { got } else { 0 };
                sent += resent;
                h.live.received.fetch_add(got, Relaxed);
                h.live.sent.fetch_add(resent, Relaxed);
                c.flush().await?;
            }
        }
    }
    h.tally.borrow_mut().sent += sent;
    Ok(())
}
