//! `ringcast ws2api`: every WebSocket event becomes a plain HTTP request to
//! an application backend, as mevdschee/ws2api does it (docs/ws2api.md):
//!
//! - a client connects to `/<id>`; the backend is asked `GET <base><id>` and
//!   the upgrade happens only when it answers 200 with exactly `ok` (another
//!   body: 403; no answer or another status: 502);
//! - each text message is `POST <base><id>` with the message as the body;
//!   a 200 answer with a body goes back to the client as a text message, in
//!   the order the messages came;
//! - the close is `DELETE <base><id>` with the client's close reason as the
//!   body (`EOF` when the connection just ended);
//! - the backend pushes with `POST /<id>` to ringcast's port: 200 `ok`, or
//!   404 for an id not connected here.
//!
//! Unlike ws2api, a second connection with an id replaces the first, which is
//! closed with 4409 and whose close is not reported to the backend (the id
//! is still connected); and the first one's close never unregisters the
//! second. Each id has a home shard (a hash of it) that knows where the id is
//! connected, so a push that lands on any shard reaches it.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use monoio::net::TcpStream;

use super::backend::{Backends, Hook, Method, Outcome, Request};
use crate::broker::memory::{MemoryBroker, MemoryPresence};
use crate::config::Config;
use crate::hub::mesh::{owner_of, ChannelName, Mesh, MeshMsg, ReplyTo};
use crate::hub::{Accepted, Clients, Hub};
use crate::protocol::codes::ClientError;
use crate::shard::ceiling::Slot;
use crate::shard::conn::Conn;
use crate::shard::service::{Admission, LocalFuture, OutboundPolicy, Service};
use crate::shard::task::frame;
use crate::shard::{ShardCtx, ShardEnv};
use crate::ws::close::CloseFrame;
use crate::ws::handshake::{HandshakeError, UpgradeRequest};
use crate::ws::DecoderConfig;

/// The close a connection gets when a newer one takes its id.
pub const REPLACED: (u16, &str) = (4409, "replaced by a newer connection");
/// Messages of one connection waiting for the backend at once, at most
/// (more: closed with 1008).
pub const MAX_IN_FLIGHT: u64 = 64;

/// The process-wide counters (ws2api's names).
#[derive(Default)]
pub struct Counters {
    pub connections_opened: AtomicU64,
    pub connections_closed: AtomicU64,
    pub requests_started: AtomicU64,
    pub requests_failed: AtomicU64,
    pub requests_succeeded: AtomicU64,
}

impl Counters {
    fn add(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Prometheus text, with the backend calls' own counters.
    pub fn render(&self, backends: &Backends) -> String {
        use std::fmt::Write as _;
        let mut out = String::with_capacity(2048);
        let mut counter = |name: &str, help: &str, v: &AtomicU64| {
            let _ = writeln!(
                out,
                "# HELP ringcast_ws2api_{name}_total {help}\n# TYPE ringcast_ws2api_{name}_total counter\nringcast_ws2api_{name}_total {}",
                v.load(Ordering::Relaxed)
            );
        };
        counter(
            "connections_opened",
            "WebSocket connections the backend accepted.",
            &self.connections_opened,
        );
        counter(
            "connections_closed",
            "WebSocket connections ended.",
            &self.connections_closed,
        );
        counter(
            "requests_started",
            "Requests to the backend (connect GET, message POST, close DELETE).",
            &self.requests_started,
        );
        counter(
            "requests_failed",
            "Requests to the backend without a 200 answer.",
            &self.requests_failed,
        );
        counter(
            "requests_succeeded",
            "Requests to the backend answered 200.",
            &self.requests_succeeded,
        );
        let open = self
            .connections_opened
            .load(Ordering::Relaxed)
            .saturating_sub(self.connections_closed.load(Ordering::Relaxed));
        let _ = writeln!(
            out,
            "# HELP ringcast_ws2api_connections Open WebSocket connections.\n# TYPE ringcast_ws2api_connections gauge\nringcast_ws2api_connections {open}"
        );
        backends.render_metrics("ringcast_ws2api_backend", &mut out);
        out
    }

    /// ws2api's own page: `name value` lines.
    pub fn plain(&self) -> String {
        format!(
            "connections_opened {}\nconnections_closed {}\nrequests_started {}\nrequests_failed {}\nrequests_succeeded {}\n",
            self.connections_opened.load(Ordering::Relaxed),
            self.connections_closed.load(Ordering::Relaxed),
            self.requests_started.load(Ordering::Relaxed),
            self.requests_failed.load(Ordering::Relaxed),
            self.requests_succeeded.load(Ordering::Relaxed),
        )
    }
}

/// What every shard shares.
pub struct Ws2ApiParts {
    pub mesh: Arc<Mesh>,
    pub config: Arc<Config>,
    pub backends: Arc<Backends>,
    pub counters: Arc<Counters>,
    pub max_message: usize,
}

/// One connected client.
pub struct Client {
    id: Rc<str>,
    conn: Rc<Conn>,
    /// The reason of the client's close frame, once it sent one.
    peer_reason: RefCell<Option<String>>,
    /// A newer connection took the id: its close is not reported.
    replaced: Cell<bool>,
    /// Messages numbered as they come, answered in that order.
    next_seq: Cell<u64>,
    next_out: Cell<u64>,
    ready: RefCell<BTreeMap<u64, Option<Bytes>>>,
}

/// A shard's clients by id, and (as home shard) where ids are connected.
#[derive(Default)]
struct Registry {
    local: RefCell<HashMap<Rc<str>, Rc<Client>, ahash::RandomState>>,
    /// For the ids this shard is home of: (shard, connection id).
    directory: RefCell<HashMap<Rc<str>, (usize, u64), ahash::RandomState>>,
}

impl Registry {
    fn of(hub: &Hub) -> &Registry {
        hub.clients()
            .as_any()
            .downcast_ref::<Registry>()
            .expect("the ws2api registry is the hub's clients")
    }

    /// Closes the local connection `conn` of `id`: a newer one took it.
    fn replace(&self, id: &str, conn: u64) {
        let c = self.local.borrow().get(id).cloned();
        if let Some(c) = c.filter(|c| c.conn.id == conn) {
            c.replaced.set(true);
            c.conn.close_with(REPLACED.0, REPLACED.1);
        }
    }

    /// Sends `body` to `id`'s connection `conn` here; false when it is gone.
    fn deliver(&self, id: &str, conn: u64, body: &[u8]) -> bool {
        let c = self.local.borrow().get(id).cloned();
        match c.filter(|c| c.conn.id == conn && !c.conn.is_closing()) {
            Some(c) => {
                c.conn.send(frame(true, body));
                true
            }
            None => false,
        }
    }
}

/// The hub's client layer in ws2api mode: nothing subscribes or publishes,
/// so only `as_any` is ever used (the registry for mesh jobs).
impl Clients for Registry {
    fn reply(&self, _conn: u64, _line: &[u8]) {}
    fn activate(&self, _c: &ChannelName, _r: ReplyTo, _a: &Accepted<'_>) -> Option<Rc<Conn>> {
        None
    }
    fn published(&self, _r: ReplyTo, _res: Result<crate::broker::Position, ClientError>) {}
    fn subscribe_failed(&self, _c: &str, _r: ReplyTo, _e: ClientError) {}
    fn insufficient(&self, _c: &str, _conns: Vec<Rc<Conn>>) -> Vec<Arc<str>> {
        Vec::new()
    }
    fn census(&self) -> (usize, Vec<String>) {
        (self.local.borrow().len(), Vec::new())
    }
    fn client_id(&self, _conn: u64) -> Option<Arc<str>> {
        None
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

pub struct Ws2Api {
    hub: Rc<Hub>,
    registry: Rc<Registry>,
    backends: Arc<Backends>,
    counters: Arc<Counters>,
    /// Counts a close's DELETE when it is answered (nobody awaits it).
    closed: Arc<Hook>,
    max_message: usize,
}

impl Ws2Api {
    /// Builds one shard's service; runs on that shard's runtime.
    pub fn start(env: &ShardEnv, parts: &Ws2ApiParts) -> Self {
        let registry = Rc::new(Registry::default());
        let hub = Hub::start(
            env.id,
            parts.mesh.clone(),
            parts.config.clone(),
            env.stats.clone(),
            Box::new(MemoryBroker::default()),
            Box::new(MemoryPresence),
            registry.clone(),
        );
        let counters = parts.counters.clone();
        let closed: Arc<Hook> = Arc::new(move |id: Option<&str>, o: &Outcome| {
            if o.ok_body().is_some() {
                Counters::add(&counters.requests_succeeded);
            } else {
                Counters::add(&counters.requests_failed);
                tracing::debug!(
                    id = id.unwrap_or(""),
                    result = o.label(),
                    "ws2api: the backend did not take the close"
                );
            }
        });
        Ws2Api {
            hub,
            registry,
            backends: parts.backends.clone(),
            counters: parts.counters.clone(),
            closed,
            max_message: parts.max_message,
        }
    }

    fn home(&self, id: &str) -> usize {
        owner_of(id, self.hub.shards())
    }

    /// A request to the backend for `id`.
    fn request(method: Method, id: &str, body: Bytes) -> Request {
        Request {
            endpoint: 0,
            method,
            suffix: Some(id.to_string()),
            headers: Vec::new(),
            content_type: None,
            body,
        }
    }

    /// A request to the backend for `id`, counted.
    fn ask(
        &self,
        method: Method,
        id: &str,
        body: Bytes,
    ) -> impl std::future::Future<Output = Outcome> {
        Counters::add(&self.counters.requests_started);
        let call = self
            .backends
            .call(&self.hub, Self::request(method, id, body));
        let counters = self.counters.clone();
        async move {
            let o = call.await;
            if o.ok_body().is_some() {
                Counters::add(&counters.requests_succeeded);
            } else {
                Counters::add(&counters.requests_failed);
            }
            o
        }
    }

    /// Registers `c` here and claims its id at the id's home shard (which
    /// closes an older connection with the id, wherever it is).
    fn claim(&self, c: &Rc<Client>) {
        let old = self
            .registry
            .local
            .borrow_mut()
            .insert(c.id.clone(), c.clone());
        if let Some(old) = old.filter(|o| o.conn.id != c.conn.id) {
            // Put back below by the home shard's word; close it now.
            old.replaced.set(true);
            old.conn.close_with(REPLACED.0, REPLACED.1);
        }
        let (id, here, conn): (Box<str>, usize, u64) =
            (c.id.as_ref().into(), self.hub.shard, c.conn.id);
        self.hub.send(
            self.home(&id),
            MeshMsg::Run(Box::new(move |home: &Hub| {
                let key: Rc<str> = Rc::from(id.as_ref());
                let prev = Registry::of(home)
                    .directory
                    .borrow_mut()
                    .insert(key, (here, conn));
                if let Some((shard, old)) = prev.filter(|p| *p != (here, conn)) {
                    let id = id.clone();
                    home.send(
                        shard,
                        MeshMsg::Run(Box::new(move |h: &Hub| Registry::of(h).replace(&id, old))),
                    );
                }
            })),
        );
    }

    /// Forgets `c`: here if it is still the id's connection, and at home
    /// only if the home still points at it (a newer one is left alone).
    fn release(&self, c: &Client) {
        {
            let mut local = self.registry.local.borrow_mut();
            if local.get(&c.id).is_some_and(|x| x.conn.id == c.conn.id) {
                local.remove(&c.id);
            }
        }
        let (id, here, conn): (Box<str>, usize, u64) =
            (c.id.as_ref().into(), self.hub.shard, c.conn.id);
        self.hub.send(
            self.home(&id),
            MeshMsg::Run(Box::new(move |home: &Hub| {
                let mut dir = Registry::of(home).directory.borrow_mut();
                if dir.get(id.as_ref()) == Some(&(here, conn)) {
                    dir.remove(id.as_ref());
                }
            })),
        );
    }

    /// Delivers a backend push to `id` wherever it is connected; false when
    /// it is not.
    async fn push(&self, id: &str, body: Bytes) -> bool {
        let key: Box<str> = id.into();
        let at = self
            .hub
            .call(self.home(id), move |home: &Hub| {
                Registry::of(home)
                    .directory
                    .borrow()
                    .get(key.as_ref())
                    .copied()
            })
            .await;
        let Some((shard, conn)) = at else {
            return false;
        };
        let key: Box<str> = id.into();
        self.hub
            .call(shard, move |h: &Hub| {
                Registry::of(h).deliver(&key, conn, &body)
            })
            .await
    }

    /// Hands answered messages to the client in the order they came.
    fn flush_answers(c: &Client) {
        let mut ready = c.ready.borrow_mut();
        while let Some(answer) = ready.remove(&c.next_out.get()) {
            c.next_out.set(c.next_out.get() + 1);
            if let Some(body) = answer {
                if !c.conn.is_closing() {
                    c.conn.send(frame(true, &body));
                }
            }
        }
    }

    async fn serve_http(self: Rc<Self>, stream: TcpStream, buf: BytesMut) {
        let me = &self;
        let idle = Duration::from_secs(90);
        crate::shard::plain::serve_requests(&stream, buf, self.max_message, idle, |req| {
            me.handle_http(req)
        })
        .await;
    }

    async fn handle_http(&self, req: crate::http::Request) -> Bytes {
        let keep = req.keep_alive;
        let text = |status: u16, body: &str| {
            crate::http::response(status, "text/plain", body.as_bytes(), keep)
        };
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/metrics") => crate::http::response(
                200,
                "text/plain; version=0.0.4",
                self.counters.render(&self.backends).as_bytes(),
                keep,
            ),
            ("GET", "/") => text(200, &self.counters.plain()),
            ("POST", path) => match client_id(path) {
                None => text(404, "not found"),
                // Text frames carry UTF-8 only: the client is not cut for
                // the backend's mistake.
                Some(_) if simdutf8::basic::from_utf8(&req.body).is_err() => {
                    text(400, "body is not UTF-8")
                }
                Some(id) => {
                    if self.push(id, req.body.clone()).await {
                        text(200, "ok")
                    } else {
                        text(404, "not found")
                    }
                }
            },
            _ => text(405, "method not allowed"),
        }
    }
}

/// The client id of a path: its first segment, made of URL path characters.
pub fn client_id(path: &str) -> Option<&str> {
    let id = path.strip_prefix('/')?.split('/').next()?;
    let ok = !id.is_empty()
        && id.len() <= 255
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=:@".contains(&b));
    ok.then_some(id)
}

impl Service for Rc<Ws2Api> {
    type State = Rc<Client>;

    fn accept(&self, req: &UpgradeRequest) -> Result<(), HandshakeError> {
        match client_id(&req.path) {
            Some(_) => Ok(()),
            None => Err(HandshakeError::NotFound),
        }
    }

    /// The backend's `GET <base><id>`: exactly `ok` lets the client in.
    fn admit(&self, req: &UpgradeRequest) -> Option<Admission> {
        let id = client_id(&req.path)?.to_string();
        let ask = self.ask(Method::Get, &id, Bytes::new());
        Some(Box::pin(async move {
            match ask.await {
                Outcome::Response { status: 200, body } if &body[..] == b"ok" => Ok(()),
                Outcome::Response { status: 200, .. } => Err(HandshakeError::Denied),
                _ => Err(HandshakeError::BadGateway),
            }
        }))
    }

    fn decoder_config(&self) -> DecoderConfig {
        DecoderConfig::server(self.max_message)
    }

    fn outbound_policy(&self) -> OutboundPolicy {
        OutboundPolicy::Disconnect { limit: 1 << 20 }
    }

    fn open(&self, conn: &Rc<Conn>, req: UpgradeRequest) -> Rc<Client> {
        let id: Rc<str> = client_id(&req.path).unwrap_or("").into();
        let c = Rc::new(Client {
            id,
            conn: conn.clone(),
            peer_reason: RefCell::new(None),
            replaced: Cell::new(false),
            next_seq: Cell::new(0),
            next_out: Cell::new(0),
            ready: RefCell::new(BTreeMap::new()),
        });
        Counters::add(&self.counters.connections_opened);
        self.claim(&c);
        c
    }

    fn on_message(&self, conn: &Rc<Conn>, c: &mut Rc<Client>, text: bool, data: Bytes) {
        if !text {
            return conn.close_with(1003, "binary messages not supported");
        }
        let seq = c.next_seq.get();
        if seq - c.next_out.get() >= MAX_IN_FLIGHT {
            return conn.close_with(1008, "too many messages waiting for the backend");
        }
        c.next_seq.set(seq + 1);
        let ask = self.ask(Method::Post, &c.id, data);
        let c = c.clone();
        monoio::spawn(async move {
            let answer = match ask.await {
                Outcome::Response { status: 200, body } if !body.is_empty() => Some(body),
                Outcome::Response { status: 200, .. } => None,
                other => {
                    tracing::debug!(id = %c.id, result = other.label(), "ws2api: message not answered");
                    None
                }
            };
            c.ready.borrow_mut().insert(seq, answer);
            Ws2Api::flush_answers(&c);
        });
    }

    fn on_peer_close(&self, _conn: &Rc<Conn>, c: &mut Rc<Client>, frame: Option<&CloseFrame>) {
        let reason = frame.map_or(String::new(), |f| {
            String::from_utf8_lossy(&f.reason).into_owned()
        });
        *c.peer_reason.borrow_mut() = Some(reason);
    }

    fn on_close(&self, _conn: &Rc<Conn>, c: Rc<Client>) {
        Counters::add(&self.counters.connections_closed);
        self.release(&c);
        if c.replaced.get() {
            return;
        }
        let reason = c
            .peer_reason
            .borrow_mut()
            .take()
            .map_or(Bytes::from_static(b"EOF"), Bytes::from);
        // Nobody awaits the DELETE: the shard keeps nothing for it (the
        // connection and its state go now), and it waits on the backends
        // thread as one small record, however many clients close at once.
        // It is sent after every message of this client that is queued
        // there: calls start in the order they are handed over.
        Counters::add(&self.counters.requests_started);
        self.backends
            .send(Ws2Api::request(Method::Delete, &c.id, reason), &self.closed);
    }

    fn takes_plain(&self, method: &str, path: &str) -> bool {
        matches!((method, path), ("GET", "/metrics") | ("GET", "/"))
            || (method == "POST" && client_id(path).is_some())
    }

    fn serve_plain(
        shard: Rc<ShardCtx<Self>>,
        stream: TcpStream,
        buf: BytesMut,
        slot: Slot,
    ) -> LocalFuture {
        let me = shard.service.clone();
        Box::pin(async move {
            me.serve_http(stream, buf).await;
            drop(slot);
        })
    }

    fn pump(&self) {
        self.hub.pump();
    }
}

#[cfg(test)]
mod tests {
    use super::client_id;

    #[test]
    fn client_ids_are_the_first_path_segment() {
        assert_eq!(client_id("/abc"), Some("abc"));
        assert_eq!(client_id("/abc/def"), Some("abc"));
        assert_eq!(client_id("/connect42"), Some("connect42"));
        assert_eq!(client_id("/"), None);
        assert_eq!(client_id(""), None);
        assert_eq!(client_id("/a b"), None);
        assert_eq!(client_id("/a\"b"), None);
    }
}
