//! One WebSocket connection: a reader (this task) and a writer task joined by an mpsc queue.

use std::collections::hash_map::RandomState;
use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::net::TcpStream;
use tokio::sync::mpsc::{self, UnboundedReceiver};
use tokio::time::{interval_at, Instant};
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{accept_hdr_async, WebSocketStream};

use crate::hub::{Hub, Outbox};
use crate::Config;

type Ws = WebSocketStream<TcpStream>;

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// Most writes the writer task batches before it flushes.
const MAX_BATCH: usize = 256;

#[derive(Deserialize)]
struct Command<'a> {
    #[serde(default)]
    id: u32,
    connect: Option<IgnoredAny>,
    subscribe: Option<ChannelRequest>,
    #[serde(borrow)]
    publish: Option<PublishRequest<'a>>,
    unsubscribe: Option<ChannelRequest>,
}

#[derive(Deserialize)]
struct ChannelRequest {
    channel: String,
}

#[derive(Deserialize)]
struct PublishRequest<'a> {
    channel: String,
    #[serde(borrow)]
    data: &'a RawValue,
}

#[derive(Serialize)]
struct Reply<'a> {
    id: u32,
    #[serde(flatten)]
    result: ReplyResult<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "lowercase")]
enum ReplyResult<'a> {
    Connect(ConnectResult<'a>),
    Subscribe(Empty),
    Publish(Empty),
    Unsubscribe(Empty),
    Error(ErrorResult),
}

#[derive(Serialize)]
struct ConnectResult<'a> {
    client: &'a str,
    version: &'static str,
    ping: u64,
    pong: bool,
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
struct ErrorResult {
    code: u32,
    message: &'static str,
}

/// Completes the handshake, then serves the client protocol or a plain echo by path.
// The handshake callback's error type is tungstenite's `http::Response`; not ours to shrink.
#[allow(clippy::result_large_err)]
pub async fn handle(stream: TcpStream, hub: Arc<Hub>, config: Arc<Config>) -> anyhow::Result<()> {
    let mut path = String::new();
    let ws = accept_hdr_async(stream, |req: &Request, resp: Response| {
        path = req.uri().path().to_owned();
        Ok(resp)
    })
    .await?;
    if path == "/connection/websocket" {
        client(ws, hub, &config).await
    } else {
        echo(ws).await
    }
}

async fn echo(mut ws: Ws) -> anyhow::Result<()> {
    // Ping/pong and the close handshake are answered by tungstenite itself.
    while let Some(msg) = ws.next().await {
        let msg = msg?;
        if msg.is_text() || msg.is_binary() {
            ws.send(msg).await?;
        }
    }
    Ok(())
}

struct Session {
    hub: Arc<Hub>,
    conn: u64,
    client: String,
    ping_secs: u64,
    outbox: Outbox,
    subscriptions: HashSet<String>,
}

async fn client(ws: Ws, hub: Arc<Hub>, config: &Config) -> anyhow::Result<()> {
    let (sink, stream) = ws.split();
    let (outbox, inbox) = mpsc::unbounded_channel();
    tokio::spawn(write_loop(sink, inbox, config.ping_interval));
    let conn = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
    let mut session = Session {
        hub,
        conn,
        client: client_id(conn),
        ping_secs: config.ping_interval.as_secs(),
        outbox,
        subscriptions: HashSet::new(),
    };
    let result = session.read_loop(stream).await;
    for channel in &session.subscriptions {
        session.hub.unsubscribe(channel, conn);
    }
    // Dropping the session drops the last sender, so the writer flushes and ends.
    result
}

impl Session {
    async fn read_loop(&mut self, mut stream: SplitStream<Ws>) -> anyhow::Result<()> {
        while let Some(msg) = stream.next().await {
            let Message::Text(text) = msg? else { continue };
            let mut replies = Vec::new();
            for line in text.as_str().split('\n') {
                if line.trim().is_empty() {
                    continue;
                }
                let Ok(cmd) = serde_json::from_str::<Command>(line) else {
                    let frame = CloseFrame {
                        code: CloseCode::from(3501),
                        reason: "bad request".into(),
                    };
                    let _ = self.outbox.send(Message::Close(Some(frame)));
                    return Ok(());
                };
                self.command(cmd, &mut replies);
            }
            if !replies.is_empty() {
                let _ = self.outbox.send(Message::text(String::from_utf8(replies)?));
            }
        }
        Ok(())
    }

    /// Executes one command and appends its reply (if any) to `replies`.
    fn command(&mut self, cmd: Command, replies: &mut Vec<u8>) {
        let result = if cmd.connect.is_some() {
            ReplyResult::Connect(ConnectResult {
                client: &self.client,
                version: "peer",
                ping: self.ping_secs,
                pong: true,
            })
        } else if let Some(req) = cmd.subscribe {
            if self.hub.subscribe(&req.channel, self.conn, &self.outbox) {
                self.subscriptions.insert(req.channel);
                ReplyResult::Subscribe(Empty {})
            } else {
                error(105, "already subscribed")
            }
        } else if let Some(req) = cmd.publish {
            self.hub.publish(&req.channel, req.data);
            ReplyResult::Publish(Empty {})
        } else if let Some(req) = cmd.unsubscribe {
            if self.subscriptions.remove(&req.channel) {
                self.hub.unsubscribe(&req.channel, self.conn);
            }
            ReplyResult::Unsubscribe(Empty {})
        } else if cmd.id == 0 {
            return; // `{}`: a pong
        } else {
            error(107, "bad request")
        };
        if cmd.id == 0 {
            return; // no id: the client wants no reply
        }
        if !replies.is_empty() {
            replies.push(b'\n');
        }
        let reply = Reply { id: cmd.id, result };
        serde_json::to_writer(replies, &reply).expect("reply serialises");
    }
}

fn error(code: u32, message: &'static str) -> ReplyResult<'static> {
    ReplyResult::Error(ErrorResult { code, message })
}

/// Drains the queue into the socket: feeds whatever is queued, then flushes once.
async fn write_loop(
    mut sink: SplitSink<Ws, Message>,
    mut inbox: UnboundedReceiver<Message>,
    ping_interval: Duration,
) -> anyhow::Result<()> {
    let pings = !ping_interval.is_zero();
    let period = if pings {
        ping_interval
    } else {
        Duration::from_secs(3600)
    };
    let mut ping = interval_at(Instant::now() + period, period);
    loop {
        let msg = tokio::select! {
            msg = inbox.recv() => match msg {
                Some(msg) => msg,
                None => break,
            },
            _ = ping.tick(), if pings => Message::text("{}"),
        };
        let mut closing = msg.is_close();
        sink.feed(msg).await?;
        let mut batched = 1;
        while !closing && batched < MAX_BATCH {
            let Ok(msg) = inbox.try_recv() else { break };
            closing = msg.is_close();
            sink.feed(msg).await?;
            batched += 1;
        }
        sink.flush().await?;
        if closing {
            return Ok(());
        }
    }
    sink.close().await?;
    Ok(())
}

/// A random UUID-v4-looking client id.
fn client_id(conn: u64) -> String {
    let random = |salt: u64| {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(conn ^ salt);
        hasher.finish()
    };
    let (a, b) = (random(0x5eed), random(0xfeed));
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | ((b >> 48) & 0x3fff),
        b & 0xffff_ffff_ffff
    )
}
