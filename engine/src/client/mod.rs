//! The client protocol service: Centrifugo protocol v2 (JSON) over WebSocket
//! at `/connection/websocket`. Commands are handled on the connection's shard;
//! anything about a channel goes to the channel's owner through the hub.

pub mod admin;
mod commands;
pub mod ping;
pub mod proxy;
pub mod registry;
pub mod session;
pub mod users;

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};

use self::session::{ClientId, Session};
use crate::auth::Verifier;
use crate::config::{ClientSection, Config};
use crate::hub::mesh::Mesh;
use crate::hub::Hub;
use crate::protocol::codes::{self, ClientError, Disconnect};
use crate::protocol::command::{self, ParseError};
use crate::protocol::{protobuf, push};
use crate::shard::conn::Conn;
use crate::shard::framing::Framing;
use crate::shard::service::{OutboundPolicy, Service};
use crate::shard::ShardEnv;
use crate::ws::handshake::{HandshakeError, UpgradeRequest};
use crate::ws::DecoderConfig;

pub const WS_PATH: &str = "/connection/websocket";
pub const UNI_WS_PATH: &str = "/connection/uni_websocket";

/// Client-protocol settings (one copy shared by every shard).
pub struct ClientOptions {
    pub config: Arc<Config>,
    /// Connections per user across the node.
    pub users: users::UserCounts,
    /// Connection and subscription token verification, when keys are set.
    pub verifier: Option<Verifier>,
    pub ping_interval: Duration,
    pub pong_timeout: Duration,
    /// This node's id: in the connect reply of the HTTP transports, which
    /// name it in `/emulation` requests.
    pub node_uid: Arc<str>,
    /// The application backends (`[proxy.*]`), once started.
    pub proxies: Option<Arc<crate::proxy::Proxies>>,
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
            node_uid: format!("{:032x}", fastrand::u128(..)).into(),
            proxies: None,
        })
    }

    pub fn client(&self) -> &ClientSection {
        &self.config.client
    }
}

#[derive(Clone)]
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
        let svc = ClientService { hub, opts };
        monoio::spawn(ping::sweep_loop(svc.clone()));
        let run = svc.clone();
        registry::Registry::of(&svc.hub).set_emulate(Box::new(move |s, data| {
            let mut s = s.clone();
            let conn = s.conn.clone();
            let text = !conn.framing().is_protobuf();
            run.on_message(&conn, &mut s, text, data)
        }));
        svc
    }

    pub fn options(&self) -> &Arc<ClientOptions> {
        &self.opts
    }

    /// Opens the session of a connection on an HTTP transport (its
    /// response has begun); the caller then hands it its first payload
    /// (`on_message` for the bidirectional ones, `uni_connect`).
    /// `headers`: the request's, as `kept_headers` asked.
    pub fn open_transport(&self, conn: &Rc<Conn>, headers: &[(String, String)]) -> Rc<Session> {
        let s = Rc::new(Session::with_transport_session(
            conn.clone(),
            Some(self.new_transport_session()),
        ));
        self.attach(&s, headers);
        s
    }

    /// Registers a new session, with what its proxy calls need.
    fn attach(&self, s: &Rc<Session>, headers: &[(String, String)]) {
        if let Some(p) = &self.opts.proxies {
            let kept = crate::proxy::keep_headers(
                &p.kept_headers,
                headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            );
            s.set_proxy(session::ProxyState::new(kept));
        }
        registry::Registry::of(&self.hub).insert(s.clone());
    }

    /// The request headers a connection keeps (for the proxies).
    pub fn kept_headers(&self) -> &[String] {
        self.opts
            .proxies
            .as_ref()
            .map_or(&[], |p| &p.kept_headers[..])
    }

    /// A session id that names this shard: `/emulation` finds the session
    /// without asking the others (`shard_of_session`).
    fn new_transport_session(&self) -> Box<str> {
        format!("{}.{}", self.hub.shard, ClientId::random()).into()
    }

    /// A unidirectional transport's connect request (a connect command's
    /// body). The connect push answers it; an error closes the connection
    /// with the disconnect Centrifugo maps it to.
    pub fn uni_connect(&self, s: &Rc<Session>, request: &[u8]) {
        let req = match command::parse_connect_request(request) {
            Ok(r) => r,
            Err(_) => return disconnect(s, codes::BAD_REQUEST_DISCONNECT),
        };
        let mut out = BytesMut::new();
        self.connect(s, 1, req, &mut out);
        self.send_connect_out(s, &out);
    }
}

impl ClientService {
    /// Runs a frame's JSON command lines, replies gathered in `out`. While
    /// the connect waits on its proxy, the lines after it wait too (a
    /// client may send its subscribes in the connect's frame) and run once
    /// it is answered.
    pub(crate) fn run_lines(&self, s: &Rc<Session>, data: Bytes, mut out: BytesMut) {
        let mut commands = 0;
        for line in command::lines(&data) {
            commands += 1;
            if self.proxy_connecting(s) {
                let at = line.as_ptr() as usize - data.as_ptr() as usize;
                if !self.stash(s, data.slice(at..)) {
                    return disconnect(s, codes::TOO_MANY_REQUESTS_DISCONNECT);
                }
                break;
            }
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
            s.conn.reply_text(&out);
        }
    }
}

/// The session a `/emulation` request names is on this shard (the shard is
/// the id's prefix).
pub fn shard_of_session(session: &str) -> Option<usize> {
    session.split_once('.')?.0.parse().ok()
}

/// What closes a unidirectional connection whose connect failed with a
/// reply error (Centrifugo's default mapping).
fn uni_disconnect(code: u32) -> Disconnect {
    match code {
        c if c == codes::TOKEN_EXPIRED.code || c == codes::EXPIRED.code => {
            codes::CONNECTION_EXPIRED
        }
        c if c == codes::TOO_MANY_REQUESTS.code => codes::TOO_MANY_REQUESTS_DISCONNECT,
        c if c == codes::PERMISSION_DENIED.code => codes::PERMISSION_DENIED_DISCONNECT,
        _ => codes::INTERNAL_SERVER_ERROR,
    }
}

impl Service for ClientService {
    type State = Rc<Session>;

    fn accept(&self, req: &UpgradeRequest) -> Result<(), HandshakeError> {
        let t = &self.opts.config.transports;
        let served = match req.path.as_str() {
            WS_PATH => t.websocket,
            UNI_WS_PATH => t.uni_websocket,
            _ => false,
        };
        if !served {
            return Err(HandshakeError::NotFound);
        }
        if !origin_allowed(&t.allowed_origins, req.origin.as_deref()) {
            return Err(HandshakeError::Forbidden);
        }
        Ok(())
    }

    fn framing(&self, req: &UpgradeRequest) -> Framing {
        let t = &self.opts.config.transports;
        if req.path == UNI_WS_PATH {
            Framing::UniWebSocket
        } else if wants_protobuf(req) {
            Framing::WebSocketProtobuf
        } else if t.websocket_compression {
            Framing::websocket(crate::ws::deflate::negotiate(&req.extensions))
        } else {
            Framing::WebSocket
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

    fn open(&self, conn: &Rc<Conn>, req: UpgradeRequest) -> Rc<Session> {
        if conn.framing().is_unidirectional() {
            return self.open_transport(conn, &req.kept);
        }
        let s = Rc::new(Session::new(conn.clone()));
        self.attach(&s, &req.kept);
        s
    }

    fn kept_headers(&self) -> &[String] {
        ClientService::kept_headers(self)
    }

    fn on_message(&self, _conn: &Rc<Conn>, s: &mut Rc<Session>, text: bool, data: Bytes) {
        if s.conn.framing().is_unidirectional() {
            // The first message is the connect request; the client has
            // nothing to say after it.
            if !s.is_connected() && !s.is_connect_pending() && !self.proxy_connecting(s) {
                self.uni_connect(s, &data);
            }
            return;
        }
        let mut out = BytesMut::new();
        let data = if s.conn.framing().is_protobuf() {
            // The protobuf protocol is binary only; its commands run as the
            // JSON lines they transcode to.
            if text {
                return disconnect(s, codes::BAD_REQUEST_DISCONNECT);
            }
            match protobuf::decode_commands(&data) {
                Ok(lines) => {
                    let mut json = BytesMut::with_capacity(data.len() * 2);
                    for line in lines {
                        match line {
                            protobuf::Line::Json(l) => {
                                sep(&mut json);
                                json.extend_from_slice(&l);
                            }
                            // Its payload is not JSON: the engine carries
                            // JSON only.
                            protobuf::Line::NotJson { id } if id != 0 => {
                                reply_error(&mut out, id, codes::BAD_REQUEST)
                            }
                            protobuf::Line::NotJson { .. } => {
                                return disconnect(s, codes::BAD_REQUEST_DISCONNECT)
                            }
                        }
                    }
                    if json.is_empty() && !out.is_empty() {
                        s.conn.reply_text(&out);
                        return;
                    }
                    json.freeze()
                }
                Err(_) => return disconnect(s, codes::BAD_REQUEST_DISCONNECT),
            }
        } else if !text {
            // The JSON protocol is text only.
            return disconnect(s, codes::BAD_REQUEST_DISCONNECT);
        } else {
            data
        };
        s.awaiting_pong.set(false);
        self.run_lines(s, data, out);
    }

    fn pump(&self) {
        self.hub.pump();
    }

    fn on_pong(&self, _conn: &Rc<Conn>, s: &mut Rc<Session>) {
        s.awaiting_pong.set(false);
    }

    fn on_close(&self, _conn: &Rc<Conn>, s: Rc<Session>) {
        if let Some(user) = s.user() {
            self.opts.users.release(&user);
        }
        registry::Registry::of(&self.hub).remove(&self.hub, &s);
    }

    fn shutdown_close(&self) -> (u16, &'static str) {
        (codes::SHUTDOWN.code, codes::SHUTDOWN.reason)
    }
}

/// centrifuge-js's protobuf build: the `centrifuge-protobuf` subprotocol,
/// or `?format=protobuf`.
fn wants_protobuf(req: &UpgradeRequest) -> bool {
    req.protocols
        .iter()
        .any(|p| p == crate::shard::framing::PROTOBUF_SUBPROTOCOL)
        || req.query.as_deref().is_some_and(|q| {
            form_urlencoded::parse(q.as_bytes()).any(|(k, v)| k == "format" && v == "protobuf")
        })
}

/// Whether a page from `origin` may use the client port (`None`: not a
/// browser).
pub fn origin_allowed(allowed: &[String], origin: Option<&str>) -> bool {
    match origin {
        None => true,
        Some(_) if allowed.is_empty() => true,
        Some(o) => allowed
            .iter()
            .any(|a| a == "*" || a.eq_ignore_ascii_case(o)),
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
