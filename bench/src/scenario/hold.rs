//! `hold`: open N connections, keep them idle for the window, answer server
//! pings. Measures time to establish, errors, and (with `--server-pid`) the
//! server's resident memory per held connection.

use std::sync::atomic::Ordering::Relaxed;

use serde::Serialize;

use super::{answer_pings, centrifuge_login, Protocol};
use crate::stats::Tally;
use crate::transport::{Conn, Incoming};
use crate::worker::{deadline, Crew, Hand, WorkerCtx};

#[derive(Debug, Clone, Serialize)]
pub struct HoldConfig {
    pub conns: usize,
    pub protocol: Protocol,
    /// Centrifuge: connection `i` subscribes to channel `i % channels`
    /// (0: none).
    pub channels: usize,
    /// Centrifuge: connection `i` subscribes to channels `i`, `i + 1`, …
    /// (mod `channels`), this many.
    pub subs_per_conn: usize,
    /// Connections opened and closed before the server's "before" RSS
    /// sample (`--warmup`; 0 without `--server-pid`).
    pub warmup: usize,
}

pub async fn run(mut ctx: WorkerCtx, cfg: HoldConfig) -> Tally {
    let mut crew = Crew::new(&ctx);
    for index in ctx.share.conns.clone() {
        let channels: Vec<String> = match (cfg.protocol, cfg.channels) {
            (Protocol::Centrifuge, k) if k > 0 => (0..cfg.subs_per_conn)
                .map(|j| ctx.plan.channel((index + j) % k))
                .collect(),
            _ => vec![],
        };
        let token = ctx.plan.token.clone();
        let protocol = cfg.protocol;
        crew.spawn(move |hand| conn(hand, index, protocol, token, channels));
    }
    crew.setup_done().await;
    if let Some(w) = ctx.ready().await {
        crew.go(w);
        tokio::time::sleep_until(deadline(w.end_ns)).await;
    }
    crew.finish().await
}

async fn conn(
    mut h: Hand,
    index: usize,
    protocol: Protocol,
    token: Option<String>,
    channels: Vec<String>,
) {
    let c = match protocol {
        Protocol::Centrifuge => {
            h.dial_conn(index, |c| async move {
                centrifuge_login(c, token.as_deref(), &channels).await
            })
            .await
        }
        Protocol::Raw => h.dial(index, |c| async { Ok(Conn::Ws(c)) }).await,
    };
    h.setup_done();
    let Some(mut c) = c else { return };
    match idle(&mut h, &mut c).await {
        Ok(()) => c.close().await,
        Err(e) => h.disconnected(e),
    }
}

/// Waits for stop; whatever arrives meanwhile is decoded and pings answered.
async fn idle(h: &mut Hand, c: &mut Conn) -> anyhow::Result<()> {
    loop {
        // What is buffered first: the login may have read past its replies.
        let mut pings = 0;
        while let Some(m) = c.next()? {
            match m {
                Incoming::Text(p) => pings += answer_pings(c, &p),
                Incoming::Closed { why, .. } => anyhow::bail!("{why}"),
                Incoming::Binary => {}
            }
        }
        c.flush().await?;
        c.shrink_idle();
        if pings > 0 {
            h.tally.borrow_mut().pings += pings;
            h.live.received.fetch_add(pings, Relaxed);
        }
        tokio::select! {
            _ = h.until_stop() => return Ok(()),
            r = c.read_some(4096) => {
                if r? == 0 {
                    anyhow::bail!("server closed the connection");
                }
            }
        }
    }
}
