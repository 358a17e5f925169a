//! One shard of a messaging node: the client-protocol service and the server
//! API (HTTP, TCP publishers) side by side on the shard's hub. The one place
//! that knows both: `client` and `api` are siblings that never import each
//! other.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use monoio::net::TcpStream;

use crate::api::{ApiCtx, ApiOptions, Port};
use crate::broker::ControlHandler;
use crate::client::session::Session;
use crate::client::{Brokers, ClientOptions, ClientService};
use crate::hub::mesh::Mesh;
use crate::shard::ceiling::Slot;
use crate::shard::conn::Conn;
use crate::shard::framing::Framing;
use crate::shard::service::{LocalFuture, OutboundPolicy, Service};
use crate::shard::{ShardCtx, ShardEnv};
use crate::ws::handshake::{HandshakeError, UpgradeRequest};
use crate::ws::DecoderConfig;

/// Index of the API listener in `ShardConfig::extra_listen`.
pub const EXTRA_API: usize = 0;
/// Index of the TCP publisher listener.
pub const EXTRA_PUBLISHER: usize = 1;

/// Process-wide facts every shard is built with.
pub struct NodeInfo {
    pub uid: Arc<str>,
    pub name: Arc<str>,
    pub started: Instant,
    pub fd_limit: u64,
}

/// What every shard of a node shares.
pub struct NodeParts {
    pub mesh: Arc<Mesh>,
    pub client: Arc<ClientOptions>,
    pub api: Arc<ApiOptions>,
    pub node: Arc<NodeInfo>,
    /// Applies a control action (disconnect, unsubscribe, subscribe of a
    /// user) to one shard's sessions.
    pub control: ControlHandler,
}

pub struct NodeService {
    client: ClientService,
    api: Rc<ApiCtx>,
}

impl NodeService {
    /// Builds one shard's services; runs on that shard's runtime.
    pub fn start(env: &ShardEnv, parts: &NodeParts, brokers: Brokers) -> Self {
        let client = ClientService::start(env, parts.mesh.clone(), parts.client.clone(), brokers);
        let hub = client.hub.clone();
        let api = Rc::new(ApiCtx {
            hub: hub.clone(),
            opts: parts.api.clone(),
            max_channel_len: parts.client.client().max_channel_length,
            node_uid: parts.node.uid.clone(),
            node_name: parts.node.name.clone(),
            started: parts.node.started,
            ceiling: env.ceiling.clone(),
            fd_limit: parts.node.fd_limit,
            control: parts.control.clone(),
            proxies: parts.client.proxies.clone(),
        });
        if env.id == 0 && hub.broker_name() != "memory" {
            monoio::spawn(crate::api::heartbeat_loop(api.clone()));
        }
        NodeService { client, api }
    }
}

impl NodeService {
    fn is_api(&self, method: &str, path: &str) -> bool {
        self.api.opts.on_client_port
            && method == "POST"
            && (path == "/api" || path.starts_with("/api/"))
    }
}

impl crate::transport::Edge for NodeService {
    fn client(&self) -> &ClientService {
        &self.client
    }
}

/// The client port is the client service's; the extra listeners are the API's.
impl Service for NodeService {
    type State = Rc<Session>;

    fn accept(&self, req: &UpgradeRequest) -> Result<(), HandshakeError> {
        self.client.accept(req)
    }

    fn decoder_config(&self) -> DecoderConfig {
        self.client.decoder_config()
    }

    fn outbound_policy(&self) -> OutboundPolicy {
        self.client.outbound_policy()
    }

    fn response_headers(&self) -> &str {
        self.client.response_headers()
    }

    fn kept_headers(&self) -> &[String] {
        self.client.kept_headers()
    }

    fn open(&self, conn: &Rc<Conn>, req: UpgradeRequest) -> Rc<Session> {
        self.client.open(conn, req)
    }

    fn on_message(&self, conn: &Rc<Conn>, s: &mut Rc<Session>, text: bool, data: Bytes) {
        self.client.on_message(conn, s, text, data)
    }

    fn on_pong(&self, conn: &Rc<Conn>, s: &mut Rc<Session>) {
        self.client.on_pong(conn, s)
    }

    fn on_close(&self, conn: &Rc<Conn>, s: Rc<Session>) {
        self.client.on_close(conn, s)
    }

    /// `POST /api`, `/api/<method>` on the client port, when
    /// `api.on_client_port` is on.
    /// And the HTTP transports' paths (`transport::takes`).
    fn takes_plain(&self, method: &str, path: &str) -> bool {
        self.is_api(method, path) || crate::transport::takes(path)
    }

    fn serve_plain(
        shard: Rc<ShardCtx<Self>>,
        stream: TcpStream,
        buf: BytesMut,
        slot: Slot,
    ) -> LocalFuture {
        let api_call = crate::ws::handshake::plain_target(&buf)
            .is_some_and(|(method, path)| shard.service.is_api(&method, &path));
        if api_call {
            let api = shard.service.api.clone();
            return Box::pin(async move {
                crate::api::serve_http_from(api, stream, buf, Port::Client).await;
                drop(slot);
            });
        }
        Box::pin(crate::transport::serve(shard, stream, buf, slot))
    }

    fn framing(&self, req: &UpgradeRequest) -> Framing {
        self.client.framing(req)
    }

    fn serve_extra(shard: Rc<ShardCtx<Self>>, which: usize, stream: TcpStream) -> LocalFuture {
        let api = shard.service.api.clone();
        match which {
            EXTRA_API => Box::pin(crate::api::serve_http(api, stream)),
            EXTRA_PUBLISHER => Box::pin(crate::api::publisher::serve_publisher(api, stream)),
            _ => Box::pin(async {}),
        }
    }

    fn pump(&self) {
        self.client.pump()
    }

    fn shutdown_close(&self) -> (u16, &'static str) {
        self.client.shutdown_close()
    }
}
