//! The client protocol service: Centrifugo protocol v2 (JSON) over WebSocket
//! at `/connection/websocket`. Commands are handled on the connection's shard;
//! anything about a channel goes to the channel's owner through the hub.

pub mod admin;
pub mod ping;
pub mod session;

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use monoio::net::TcpStream;

use bytes::{BufMut, Bytes, BytesMut};

use self::session::{Identity, Session, SubState};
use crate::api::{ApiCtx, ApiOptions};
use crate::hub::mesh::{ChannelName, Member, Mesh, MeshMsg};
use crate::hub::{Hub, HubOptions};
use crate::protocol::codes::{self, ClientError, Disconnect};
use crate::protocol::command::{self, Command, ParseError};
use crate::protocol::json::{put_str, put_u64};
use crate::protocol::push;
use crate::shard::conn::Conn;
use crate::shard::service::{LocalFuture, OutboundPolicy, Service};
use crate::shard::{ShardCtx, ShardEnv};
use crate::ws::frame::{encode, OpCode};
use crate::ws::handshake::{HandshakeError, UpgradeRequest};
use crate::ws::DecoderConfig;

pub const WS_PATH: &str = "/connection/websocket";

/// Client-protocol settings (one copy shared by every shard).
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Accept connections without a token and allow client publish.
    pub insecure: bool,
    pub max_message: usize,
    /// Outbound bytes queued for one client before it is cut with 3008.
    pub max_queue: usize,
    pub ping_interval: Duration,
    pub pong_timeout: Duration,
    pub max_channel_len: usize,
    pub max_subscriptions: usize,
    pub hub: HubOptions,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            insecure: false,
            max_message: 64 * 1024,
            max_queue: 1 << 20,
            ping_interval: Duration::from_secs(25),
            pong_timeout: Duration::from_secs(8),
            max_channel_len: 255,
            max_subscriptions: 128,
            hub: HubOptions {
                presence: false,
                join_leave: false,
            },
        }
    }
}

pub struct ClientService {
    pub hub: Rc<Hub>,
    opts: Arc<ClientOptions>,
    api: Rc<ApiCtx>,
}

/// Process-wide facts every shard's service is built with.
pub struct NodeInfo {
    pub uid: Arc<str>,
    pub name: Arc<str>,
    pub started: Instant,
    pub fd_limit: u64,
}

impl ClientService {
    /// Builds one shard's service; runs on that shard's runtime.
    pub fn start(
        env: &ShardEnv,
        mesh: Arc<Mesh>,
        opts: Arc<ClientOptions>,
        api: Arc<ApiOptions>,
        node: &NodeInfo,
    ) -> Self {
        let hub = Hub::start(env.id, mesh, opts.hub, env.stats.clone());
        monoio::spawn(ping::sweep_loop(hub.clone(), opts.clone()));
        let api = Rc::new(ApiCtx {
            hub: hub.clone(),
            opts: api,
            max_channel_len: opts.max_channel_len,
            node_uid: node.uid.clone(),
            node_name: node.name.clone(),
            started: node.started,
            ceiling: env.ceiling.clone(),
            fd_limit: node.fd_limit,
        });
        ClientService { hub, opts, api }
    }

    fn handle(
        &self,
        s: &Rc<Session>,
        id: u32,
        cmd: Command<'_>,
        frame: &Bytes,
        out: &mut BytesMut,
    ) {
        let connected = s.is_connected();
        match cmd {
            Command::Pong => s.awaiting_pong.set(false),
            Command::Connect(req) => {
                if connected {
                    return disconnect(s, codes::BAD_REQUEST_DISCONNECT);
                }
                if !self.opts.insecure {
                    // Token verification arrives with JWT support; until then only
                    // --insecure admits clients.
                    let _ = req.token;
                    return disconnect(s, codes::INVALID_TOKEN);
                }
                self.connect(s, id, out);
            }
            _ if !connected => disconnect(s, codes::BAD_REQUEST_DISCONNECT),
            Command::Subscribe(req) => {
                let channel = &*req.channel;
                if let Err(e) = self.check_channel(channel) {
                    return reply_error(out, id, e);
                }
                if s.sub_state(channel)
                    .is_some_and(|st| st != SubState::Cancelled)
                {
                    return reply_error(out, id, codes::ALREADY_SUBSCRIBED);
                }
                if s.sub_count() >= self.opts.max_subscriptions {
                    return reply_error(out, id, codes::LIMIT_EXCEEDED);
                }
                let channel: ChannelName = channel.into();
                s.add_pending(channel.clone());
                let member = s
                    .with_identity(|i| Member {
                        client: i.client.clone(),
                        user: i.user.clone(),
                        info: i.info.clone(),
                    })
                    .expect("connected");
                let reply = self.hub.reply_to(s.conn.id, id);
                self.hub.send(
                    self.hub.owner_of(&channel),
                    MeshMsg::Subscribe {
                        channel,
                        member,
                        reply,
                    },
                );
            }
            Command::Unsubscribe(req) => {
                if s.unsubscribe(&req.channel) == Some(SubState::Active) {
                    self.hub.subs.borrow_mut().remove(&req.channel, &s.conn);
                    let client = s.client_id().expect("connected");
                    self.hub.unsubscribe_at_owner((*req.channel).into(), client);
                }
                reply_empty(out, id, "unsubscribe");
            }
            Command::Publish(req) => {
                if !self.opts.insecure {
                    return reply_error(out, id, codes::PERMISSION_DENIED);
                }
                if let Err(e) = self.check_channel(&req.channel) {
                    return reply_error(out, id, e);
                }
                // The raw JSON is a slice of the received frame: no copy.
                let data = frame.slice_ref(req.data.get().as_bytes());
                let info = s.with_identity(|i| i.info.clone());
                let channel: ChannelName = (*req.channel).into();
                let reply = Some(self.hub.reply_to(s.conn.id, id));
                self.hub.send(
                    self.hub.owner_of(&channel),
                    MeshMsg::Publish {
                        channel,
                        data,
                        info,
                        reply,
                    },
                );
            }
            Command::Presence(req) | Command::PresenceStats(req) if !self.opts.hub.presence => {
                let _ = req;
                reply_error(out, id, codes::NOT_AVAILABLE)
            }
            Command::Presence(req) => self.presence(s, id, &req.channel, false, out),
            Command::PresenceStats(req) => self.presence(s, id, &req.channel, true, out),
            Command::History(_) => reply_error(out, id, codes::NOT_AVAILABLE),
            Command::Ping => reply_empty(out, id, "ping"),
            // No send handler is configured: asynchronous messages are dropped.
            Command::Send(_) => {}
            Command::Rpc(_) => reply_error(out, id, codes::METHOD_NOT_FOUND),
            Command::Refresh(_) | Command::SubRefresh(_) => {
                reply_error(out, id, codes::NOT_AVAILABLE)
            }
        }
    }

    fn connect(&self, s: &Rc<Session>, id: u32, out: &mut BytesMut) {
        let client: Arc<str> = new_client_id().into();
        let user: Arc<str> = "".into();
        let info = push::client_info(&user, &client, None);
        s.set_identity(Identity {
            client: client.clone(),
            user,
            info,
        });
        sep(out);
        push::open_result(out, id, "connect");
        out.put_slice(b"\"client\":");
        put_str(out, &client);
        out.put_slice(b",\"version\":");
        put_str(out, crate::VERSION);
        out.put_slice(b",\"ping\":");
        put_u64(out, self.opts.ping_interval.as_secs().max(1));
        out.put_slice(b",\"pong\":true");
        push::close_result(out);
    }

    fn presence(&self, s: &Rc<Session>, id: u32, channel: &str, stats: bool, out: &mut BytesMut) {
        if let Err(e) = self.check_channel(channel) {
            return reply_error(out, id, e);
        }
        let reply = self.hub.reply_to(s.conn.id, id);
        self.hub.send(
            self.hub.owner_of(channel),
            MeshMsg::Presence {
                channel: channel.into(),
                stats,
                reply,
            },
        );
    }

    fn check_channel(&self, channel: &str) -> Result<(), ClientError> {
        if channel.is_empty() || channel.len() > self.opts.max_channel_len {
            Err(codes::BAD_REQUEST)
        } else {
            Ok(())
        }
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
        DecoderConfig::server(self.opts.max_message)
    }

    fn outbound_policy(&self) -> OutboundPolicy {
        OutboundPolicy::Disconnect {
            limit: self.opts.max_queue,
        }
    }

    fn open(&self, conn: &Rc<Conn>, _req: UpgradeRequest) -> Rc<Session> {
        let s = Rc::new(Session::new(conn.clone()));
        self.hub.sessions.borrow_mut().insert(conn.id, s.clone());
        s
    }

    fn on_message(&self, _conn: &Rc<Conn>, s: &mut Rc<Session>, text: bool, data: Bytes) {
        if !text {
            // The JSON protocol is text only.
            return disconnect(s, codes::BAD_REQUEST_DISCONNECT);
        }
        s.awaiting_pong.set(false);
        let mut out = BytesMut::new();
        for line in command::lines(&data) {
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
        if !out.is_empty() {
            s.conn.send(encode(OpCode::Text, &out));
        }
    }

    fn on_pong(&self, _conn: &Rc<Conn>, s: &mut Rc<Session>) {
        s.awaiting_pong.set(false);
    }

    fn on_close(&self, _conn: &Rc<Conn>, s: Rc<Session>) {
        self.hub.remove_session(&s);
    }

    fn serve_extra(shard: Rc<ShardCtx<Self>>, which: usize, stream: TcpStream) -> LocalFuture {
        match which {
            EXTRA_API => Box::pin(crate::api::serve_http(shard.service.api.clone(), stream)),
            EXTRA_PUBLISHER => Box::pin(crate::api::publisher::serve_publisher(
                shard.service.api.clone(),
                stream,
            )),
            _ => Box::pin(async {}),
        }
    }

    fn shutdown_close(&self) -> (u16, &'static str) {
        (codes::SHUTDOWN.code, codes::SHUTDOWN.reason)
    }
}

/// Index of the API listener in `ShardConfig::extra_listen`.
pub const EXTRA_API: usize = 0;
/// Index of the TCP publisher listener.
pub const EXTRA_PUBLISHER: usize = 1;

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
