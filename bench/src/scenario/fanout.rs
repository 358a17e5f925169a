//! `fanout` (and `publish`, the same run with other defaults): S subscribers
//! over C channels, P publishers (see `pubsub.rs` for the publishers'
//! schedule and the delivery accounting). Subscriber `i` subscribes to
//! channel `i % C`.

use serde::Serialize;

use super::pubsub::{finish_window, receive, spawn_publishers, Ended, PublisherLoad, Receiver};
use super::{centrifuge_login, centrifuge_login_with};
use crate::centrifuge::subscribe_delta_cmd;
use crate::stats::Tally;
use crate::worker::{Crew, Hand, WorkerCtx};

#[derive(Debug, Clone, Serialize)]
pub struct FanoutConfig {
    pub subscribers: usize,
    #[serde(flatten)]
    pub load: PublisherLoad,
    /// After the window: stop once no delivery arrived for this long
    /// (at most `drain_max_s`).
    pub quiet_s: f64,
    /// Subscribers keep the kernel's receive timestamps, to split the
    /// latency at the subscriber's socket.
    pub rx_timestamps: bool,
    /// Subscribers take fossil deltas.
    pub delta: bool,
}

pub async fn run(mut ctx: WorkerCtx, cfg: FanoutConfig) -> Tally {
    let mut crew = Crew::new(&ctx);
    let plan = ctx.plan.clone();
    for index in ctx.share.conns.clone() {
        let channel = (index % cfg.load.channels.max(1)) as u32;
        let name = plan.channel(channel as usize);
        let token = plan.token.clone();
        let (stamps, delta) = (cfg.rx_timestamps, cfg.delta);
        crew.spawn(move |hand| subscriber(hand, index, channel, name, token, stamps, delta));
    }
    let running = spawn_publishers(&mut crew, &ctx, &cfg.load, cfg.subscribers);
    crew.setup_done().await;
    if let Some(w) = ctx.ready().await {
        crew.go(w);
        finish_window(&ctx, w, &cfg.load, &running, || false, cfg.quiet_s).await;
    }
    crew.finish().await
}

/// Counts a subscriber that completed its subscribe to `channel`: it is
/// owed every publication to the channel from the window on.
pub fn count_subscriber(h: &Hand, channel: u32) {
    *h.tally
        .borrow_mut()
        .channel_subscribers
        .entry(channel)
        .or_default() += 1;
}

async fn subscriber(
    mut h: Hand,
    index: usize,
    channel: u32,
    name: String,
    token: Option<String>,
    stamps: bool,
    delta: bool,
) {
    let c = h
        .dial_conn(index, |c| async move {
            if delta {
                let sub = [subscribe_delta_cmd(2, &name)];
                centrifuge_login_with(c, token.as_deref(), &sub, |_| {}).await
            } else {
                centrifuge_login(c, token.as_deref(), std::slice::from_ref(&name)).await
            }
        })
        .await;
    h.setup_done();
    let Some(mut c) = c else { return };
    if stamps {
        if let Err(e) = c.rx_timestamps() {
            h.tally.borrow_mut().error(format!("SO_TIMESTAMPNS: {e}"));
        }
    }
    count_subscriber(&h, channel);
    let mut rx = Receiver::default();
    rx.delta = delta.then(Vec::new);
    let ended = receive(&mut h, &mut c, &mut rx, None).await;
    rx.settle_into(&mut h.tally.borrow_mut());
    match ended {
        Ended::Stop | Ended::Drop => c.close().await,
        Ended::Lost { why, .. } => h.disconnected(why),
    }
}
