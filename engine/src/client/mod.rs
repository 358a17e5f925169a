//! The client protocol service: Centrifugo protocol v2 (JSON) over WebSocket
//! at `/connection/websocket`. Commands are handled on the connection's shard;
//! anything about a channel goes to the channel's owner through the hub.

pub mod admin;
mod commands;
pub mod ping;
pub mod registry;
pub mod session;
pub mod users;

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};

use self::session::Session;
use crate::auth::Verifier;
use crate::config::{ClientSection, Config};
use crate::hub::mesh::Mesh;
use crate::hub::Hub;
use crate::protocol::codes::{self, ClientError, Disconnect};
use crate::protocol::command::{self, ParseError};
use crate::protocol::push;
use crate::shard::conn::Conn;
use crate::shard::service::{OutboundPolicy, Service};
use crate::shard::ShardEnv;
use crate::ws::frame::{encode, OpCode};
use crate::ws::handshake::{HandshakeError, UpgradeRequest};
use crate::ws::DecoderConfig;

pub const WS_PATH: &str = "/connection/websocket";

/// Client-protocol settings (one copy shared by every shard).
pub struct ClientOptions {
    pub config: Arc<Config>,
    /// Connections per user across the node.
    pub users: users::UserCounts,
    /// Connection and subscription token verification, when keys are set.
    pub verifier: Option<Verifier>,
    pub ping_interval: Duration,
    pub pong_timeout: Duration,
}

impl ClientOptions {
    pub fn from_config(cfg: &Config) -> anyhow::Result<Self> {
        let verifier = match Verifier::new(&cfg.auth) {
            Ok(v) => Some(v),
            Err(crate::auth::ConfigError::NoKeys) => None,
            Err(e) => anyhow::bail!("auth: {e}"),
        };
        if verifier.is_none() && !cfg.client.insecure {
            tracing::warn!(
                "no token keys configured ([auth]) and client.insecure is off: \
                 every client connect is refused with 3500"
            );
        }
        Ok(ClientOptions {
            users: users::UserCounts::new(cfg.client.max_connections_per_user),
            config: Arc::new(cfg.clone()),
            verifier,
            ping_interval: Duration::from_secs(cfg.client.ping_interval.max(1)),
            pong_timeout: Duration::from_secs_f64(cfg.client.pong_timeout),
        })
    }

    pub fn client(&self) -> &ClientSection {
        &self.config.client
    }
}

pub struct ClientService {
    pub hub: Rc<Hub>,
    opts: Arc<ClientOptions>,
}

/// One shard's broker and presence manager.
pub type Brokers = (
    Box<dyn crate::broker::Broker>,
    Box<dyn crate::broker::PresenceManager>,
);

impl ClientService {
    /// Builds one shard's service; runs on that shard's runtime.
    pub fn start(
        env: &ShardEnv,
        mesh: Arc<Mesh>,
        opts: Arc<ClientOptions>,
        (broker, presence): Brokers,
    ) -> Self {
        let hub = Hub::start(
            env.id,
            mesh,
            opts.config.clone(),
            env.stats.clone(),
            broker,
            presence,
            Rc::new(registry::Registry::default()),
        );
        monoio::spawn(ping::sweep_loop(hub.clone(), opts.clone()));
        ClientService { hub, opts }
    }
}

impl Service for ClientService {
    type State = Rc<Session>;

    fn accept(&self, req: &UpgradeRequest) -> Result<(), HandshakeError> {
        if req.path == WS_PATH {
            Ok(())
        } else {
            Err(HandshakeError::NotFound)
        }
    }

    fn decoder_config(&self) -> DecoderConfig {
        DecoderConfig::server(self.opts.config.server.max_message)
    }

    fn outbound_policy(&self) -> OutboundPolicy {
        OutboundPolicy::Disconnect {
            limit: self.opts.client().max_queue,
        }
    }

    fn open(&self, conn: &Rc<Conn>, _req: UpgradeRequest) -> Rc<Session> {
        let s = Rc::new(Session::new(conn.clone()));
        registry::Registry::of(&self.hub).insert(s.clone());
        s
    }

    fn on_message(&self, _conn: &Rc<Conn>, s: &mut Rc<Session>, text: bool, data: Bytes) {
        if !text {
            // The JSON protocol is text only.
            return disconnect(s, codes::BAD_REQUEST_DISCONNECT);
        }
        s.awaiting_pong.set(false);
        let mut out = BytesMut::new();
        let mut commands = 0;
        for line in command::lines(&data) {
            commands += 1;
            match command::parse(line) {
                Ok((id, cmd)) => self.handle(s, id, cmd, &data, &mut out),
                Err(ParseError::BadRequest { id }) if id != 0 => {
                    reply_error(&mut out, id, codes::BAD_REQUEST)
                }
                Err(_) => disconnect(s, codes::BAD_REQUEST_DISCONNECT),
            }
            if s.conn.is_closing() {
                return;
            }
        }
        if commands == 0 {
            // An empty frame (or only blank lines) carries no command: a
            // bad request, as in Centrifugo.
            return disconnect(s, codes::BAD_REQUEST_DISCONNECT);
        }
        if !out.is_empty() {
            s.conn.reply(encode(OpCode::Text, &out));
        }
    }

    fn pump(&self) {
        self.hub.pump();
    }

    fn on_pong(&self, _conn: &Rc<Conn>, s: &mut Rc<Session>) {
        s.awaiting_pong.set(false);
    }

    fn on_close(&self, _conn: &Rc<Conn>, s: Rc<Session>) {
        if let Some(user) = s.with_identity(|i| i.user.clone()) {
            self.opts.users.release(&user);
        }
        registry::Registry::of(&self.hub).remove(&self.hub, &s);
    }

    fn shutdown_close(&self) -> (u16, &'static str) {
        (codes::SHUTDOWN.code, codes::SHUTDOWN.reason)
    }
}

fn sep(out: &mut BytesMut) {
    if !out.is_empty() {
        out.put_u8(b'\n');
    }
}

fn reply_error(out: &mut BytesMut, id: u32, e: ClientError) {
    sep(out);
    push::error(out, id, e);
}

fn reply_empty(out: &mut BytesMut, id: u32, method: &str) {
    sep(out);
    push::empty_result(out, id, method);
}

fn disconnect(s: &Session, d: Disconnect) {
    s.conn.close_with(d.code, d.reason);
}

/// A random UUID v4 string.
fn new_client_id() -> String {
    let r = fastrand::u128(..);
    let r = (r & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    let h = format!("{r:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn client_ids_are_uuid_v4() {
        let id = super::new_client_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
        assert_ne!(id, super::new_client_id());
    }
}
