//! Scenarios: what the connections of a run do. Each is one file with a
//! config and a `run(ctx) -> Tally` for one worker; `pubsub.rs` holds the
//! publishers and the delivery accounting that fanout, publish and storm
//! share (`publish` is a fanout run with other defaults and its own report).

pub mod echo;
pub mod fanout;
pub mod hold;
pub mod pubsub;
pub mod storm;

use std::time::Duration;

use anyhow::bail;
use serde::Serialize;

use crate::centrifuge::{classify, connect_cmd, subscribe_cmd, Line};
use crate::net::{Spread, Target};
use crate::stats::Tally;
use crate::transport::{Conn, Payload, Transport};
use crate::worker::{Share, WorkerCtx};

/// Everything a run needs, the same in every worker and child process.
#[derive(Debug, Clone)]
pub struct Plan {
    pub scenario: Scenario,
    /// `--url`: WebSocket connections go there, the HTTP transports to
    /// its host and port.
    pub target: Target,
    pub url: String,
    /// What the Centrifugo connections (hold, subscribers) use.
    pub transport: Transport,
    pub spread: Spread,
    pub duration: Duration,
    pub connect_timeout: Duration,
    /// Centrifugo connect token, if the server wants one.
    pub token: Option<String>,
    /// Channel names are `<prefix>-<index>`.
    pub channel_prefix: String,
}

impl Plan {
    pub fn channel(&self, index: usize) -> String {
        format!("{}-{index}", self.channel_prefix)
    }

    /// The whole run as one share: primary connections, then publishers.
    pub fn share(&self) -> Share {
        let (conns, pubs) = match &self.scenario {
            Scenario::Hold(c) => (c.conns, 0),
            Scenario::Echo(c) => (c.conns, 0),
            Scenario::Fanout(c) | Scenario::Publish(c) => (c.subscribers, c.load.publishers),
            Scenario::Storm(c) => (c.conns, c.load.publishers),
        };
        Share {
            conns: 0..conns,
            pubs: conns..conns + pubs,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "scenario", rename_all = "snake_case")]
pub enum Scenario {
    Hold(hold::HoldConfig),
    Echo(echo::EchoConfig),
    Fanout(fanout::FanoutConfig),
    Publish(fanout::FanoutConfig),
    Storm(storm::StormConfig),
}

impl Scenario {
    pub fn name(&self) -> &'static str {
        match self {
            Scenario::Hold(_) => "hold",
            Scenario::Echo(_) => "echo",
            Scenario::Fanout(_) => "fanout",
            Scenario::Publish(_) => "publish",
            Scenario::Storm(_) => "storm",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// Centrifugo client protocol (JSON): connect, subscribe, answer pings.
    Centrifuge,
    /// WebSocket upgrade only.
    Raw,
}

/// One worker's part of the run.
pub async fn run_worker(ctx: WorkerCtx) -> Tally {
    match ctx.plan.scenario.clone() {
        Scenario::Hold(c) => hold::run(ctx, c).await,
        Scenario::Echo(c) => echo::run(ctx, c).await,
        Scenario::Fanout(c) | Scenario::Publish(c) => fanout::run(ctx, c).await,
        Scenario::Storm(c) => storm::run(ctx, c).await,
    }
}

/// The Centrifugo login: `connect` (id 1), then one `subscribe` per channel
/// (ids 2…), pipelined in one write (on HTTP: the request that opens the
/// stream); waits for every reply, answering server pings meanwhile. An
/// error reply fails the connection.
pub async fn centrifuge_login(
    c: Conn,
    token: Option<&str>,
    channels: &[String],
) -> anyhow::Result<Conn> {
    let subscribes: Vec<Vec<u8>> = channels
        .iter()
        .enumerate()
        .map(|(i, ch)| subscribe_cmd(2 + i as u64, ch))
        .collect();
    centrifuge_login_with(c, token, &subscribes, |_| {}).await
}

/// `centrifuge_login` with the subscribe commands given (ids 2…, in order);
/// `seen` gets every line that is neither a ping nor the connect reply:
/// the subscribe replies and any push that arrives before the last reply.
pub async fn centrifuge_login_with(
    mut c: Conn,
    token: Option<&str>,
    subscribes: &[Vec<u8>],
    mut seen: impl FnMut(&[u8]),
) -> anyhow::Result<Conn> {
    c.queue(&connect_cmd(1, token));
    for cmd in subscribes {
        c.queue(cmd);
    }
    c.flush().await?;
    let mut waiting = 1 + subscribes.len();
    while waiting > 0 {
        let payload = c.recv().await?;
        for line in payload.lines() {
            match classify(line) {
                Line::Reply { id, error } => {
                    if error {
                        let what = if id == 1 { "connect" } else { "subscribe" };
                        bail!("{what} refused: {}", String::from_utf8_lossy(line));
                    }
                    waiting = waiting.saturating_sub(1);
                    if id == 1 {
                        c.connected(line)?;
                    } else {
                        seen(line);
                    }
                }
                Line::Ping => c.pong(),
                Line::Push { .. } => seen(line),
                Line::Other => {}
            }
        }
    }
    c.flush().await?;
    c.shrink_idle();
    Ok(c)
}

/// Handles the Centrifugo lines of one payload that need no scenario
/// logic: pings are answered (queued). Returns the number of pings.
pub fn answer_pings(c: &mut Conn, payload: &Payload) -> u64 {
    let mut pings = 0;
    for line in payload.lines() {
        if classify(line) == Line::Ping {
            c.pong();
            pings += 1;
        }
    }
    pings
}
