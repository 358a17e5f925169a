//! Command line: `ringcast serve` (the default), `ringcast echo`,
//! `ringcast config check FILE`. Flags and `RINGCAST_*` variables override
//! the `--config` file, which overrides the built-in defaults.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand};

use crate::api::ApiOptions;
use crate::broker::memory::{MemoryBroker, MemoryPresence};
use crate::broker::redis::{RedisBroker, RedisPresence};
use crate::broker::{Broker, ControlHandler, PresenceManager};
use crate::client::ClientOptions;
use crate::config::{BrokerKind, Config};
use crate::hub::mesh::Mesh;
use crate::node::{NodeInfo, NodeParts, NodeService};
use crate::shard::ceiling::{self, Ceiling};
use crate::shard::driver::DriverChoice;
use crate::shard::shutdown::Shutdown;
use crate::shard::{self, ShardConfig};

#[derive(Debug, Parser)]
#[command(
    name = "ringcast",
    version,
    about = "WebSocket real-time messaging on io_uring, one shard per core"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the messaging server (the default).
    Serve(Box<ServeArgs>),
    /// Run a WebSocket echo server on the same shards and codec.
    Echo(EchoArgs),
    /// Run as a WebSocket-to-HTTP gateway (mevdschee/ws2api's protocol):
    /// every connect, message and close is an HTTP request to a backend.
    Ws2api(Ws2ApiArgs),
    /// Configuration tools.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a TOML file and print the effective configuration (file +
    /// RINGCAST_* environment), secrets redacted.
    Check { file: PathBuf },
}

/// Options every server mode shares. Unset flags fall back to the file.
#[derive(Debug, Clone, Default, Args)]
pub struct RuntimeArgs {
    /// TOML configuration file (see docs/configuration.md).
    #[arg(long, env = "RINGCAST_CONFIG")]
    pub config: Option<PathBuf>,
    /// Shards (threads, one per core) [default: online CPUs].
    #[arg(long, env = "RINGCAST_SHARDS")]
    pub shards: Option<usize>,
    /// Address to listen on [default: 0.0.0.0].
    #[arg(long, env = "RINGCAST_ADDRESS")]
    pub address: Option<IpAddr>,
    /// I/O driver [default: auto: io_uring, falling back to epoll].
    #[arg(long, env = "RINGCAST_DRIVER", value_enum)]
    pub driver: Option<DriverChoice>,
    /// Do not pin shard threads to cores.
    #[arg(long, env = "RINGCAST_NO_PIN", num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub no_pin: Option<bool>,
    /// Run the shard threads under SCHED_FIFO at this priority, 1-99 (needs
    /// CAP_SYS_NICE or RLIMIT_RTPRIO) [default: 0, the normal policy].
    #[arg(long, env = "RINGCAST_REALTIME_PRIORITY")]
    pub realtime_priority: Option<u8>,
    /// Largest WebSocket message accepted, bytes (larger: close 1009).
    #[arg(long, env = "RINGCAST_MAX_MESSAGE")]
    pub max_message: Option<usize>,
    /// Seconds a client has to complete the upgrade request [default: 10].
    #[arg(long, env = "RINGCAST_HANDSHAKE_TIMEOUT")]
    pub handshake_timeout: Option<f64>,
    /// Cap on client connections [default: the fd limit minus a reserve].
    #[arg(long, env = "RINGCAST_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Seconds a graceful shutdown waits for clients to be told and flushed [default: 10].
    #[arg(long, env = "RINGCAST_SHUTDOWN_TIMEOUT")]
    pub shutdown_timeout: Option<f64>,
    /// Seconds a shard may hold its next flush pass after a pass of many
    /// one-frame sends, to coalesce more per send; 0 disables [default: 0.1].
    #[arg(long, env = "RINGCAST_FLUSH_HOLD_MAX")]
    pub flush_hold_max: Option<f64>,
}

#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// Client WebSocket port [default: 8000].
    #[arg(long, env = "RINGCAST_PORT")]
    pub port: Option<u16>,
    /// Outbound bytes queued for one client before it is cut with 3008 [default: 1 MiB].
    #[arg(long, env = "RINGCAST_MAX_QUEUE")]
    pub max_queue: Option<usize>,
    /// Accept clients without a token and allow every client action.
    #[arg(long, env = "RINGCAST_INSECURE", num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub insecure: Option<bool>,
    /// Keep presence in channels outside namespaces.
    #[arg(long, env = "RINGCAST_PRESENCE", num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub presence: Option<bool>,
    /// Push join/leave in channels outside namespaces.
    #[arg(long, env = "RINGCAST_JOIN_LEAVE", num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub join_leave: Option<bool>,
    /// Seconds between server pings [default: 25].
    #[arg(long, env = "RINGCAST_PING_INTERVAL")]
    pub ping_interval: Option<u64>,
    /// Seconds a client has to answer a ping [default: 8].
    #[arg(long, env = "RINGCAST_PONG_TIMEOUT")]
    pub pong_timeout: Option<f64>,
    /// Internal port: server API, /metrics, /health [default: 9000].
    #[arg(long, env = "RINGCAST_API_PORT")]
    pub api_port: Option<u16>,
    /// Key the server API and TCP publishers require.
    #[arg(long, env = "RINGCAST_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Serve the server API without a key (trusted networks only).
    #[arg(long, env = "RINGCAST_API_INSECURE", num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub api_insecure: Option<bool>,
    /// Also serve the server API on the client port (key required) [default: false].
    #[arg(long, env = "RINGCAST_API_ON_CLIENT_PORT", num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub api_on_client_port: Option<bool>,
    /// Serve the client protocol over WebSocket at /connection/websocket [default: true].
    #[arg(long, env = "RINGCAST_WEBSOCKET", num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub websocket: Option<bool>,
    /// Serve the HTTP-streaming fallback at /connection/http_stream (+ /emulation) [default: false].
    #[arg(long, env = "RINGCAST_HTTP_STREAM", num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub http_stream: Option<bool>,
    /// Serve the SSE fallback at /connection/sse (+ /emulation) [default: false].
    #[arg(long, env = "RINGCAST_SSE", num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub sse: Option<bool>,
    /// Negotiate permessage-deflate with WebSocket clients that offer it [default: false].
    #[arg(long, env = "RINGCAST_WEBSOCKET_COMPRESSION", num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub websocket_compression: Option<bool>,
    /// Serve unidirectional WebSocket at /connection/uni_websocket [default: false].
    #[arg(long, env = "RINGCAST_UNI_WEBSOCKET", num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub uni_websocket: Option<bool>,
    /// Serve unidirectional SSE at /connection/uni_sse [default: false].
    #[arg(long, env = "RINGCAST_UNI_SSE", num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub uni_sse: Option<bool>,
    /// Serve unidirectional HTTP streaming at /connection/uni_http_stream [default: false].
    #[arg(long, env = "RINGCAST_UNI_HTTP_STREAM", num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub uni_http_stream: Option<bool>,
    /// Origin allowed to use the client port from a browser; repeatable,
    /// `*` for any [default: any]. Env: comma-separated.
    #[arg(
        long = "allowed-origin",
        env = "RINGCAST_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origin: Vec<String>,
    /// TCP publisher port [default: 9001].
    #[arg(long, env = "RINGCAST_PUBLISHER_PORT")]
    pub publisher_port: Option<u16>,
    /// Largest TCP publisher frame, bytes [default: 1 MiB].
    #[arg(long, env = "RINGCAST_PUBLISHER_MAX_FRAME")]
    pub publisher_max_frame: Option<usize>,
    /// Broker: memory (one node) or redis (many nodes) [default: memory].
    #[arg(long, env = "RINGCAST_BROKER", value_enum)]
    pub broker: Option<crate::config::BrokerKind>,
    /// Redis server URL, redis://[:password@]host:port[/db]; repeat for
    /// several (channels spread by a consistent hash). Env: comma-separated.
    #[arg(
        long = "redis-address",
        env = "RINGCAST_REDIS_ADDRESS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub redis_address: Vec<String>,
    /// Prefix of every Redis key and channel [default: ringcast].
    #[arg(long, env = "RINGCAST_REDIS_PREFIX")]
    pub redis_prefix: Option<String>,
    /// Redis Sentinel host:port to find the master through; repeatable.
    #[arg(
        long = "redis-sentinel-address",
        env = "RINGCAST_REDIS_SENTINEL_ADDRESS",
        value_delimiter = ','
    )]
    pub redis_sentinel_address: Vec<String>,
    /// A seed node of a Redis Cluster, redis://[:password@]host:port;
    /// repeatable (instead of --redis-address). Env: comma-separated.
    #[arg(
        long = "redis-cluster-address",
        env = "RINGCAST_REDIS_CLUSTER_ADDRESS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub redis_cluster_address: Vec<String>,
    /// The master's name at the Sentinels.
    #[arg(long, env = "RINGCAST_REDIS_SENTINEL_MASTER")]
    pub redis_sentinel_master: Option<String>,
    /// This node's name, unique per node [default: hostname:port].
    #[arg(long, env = "RINGCAST_NODE_NAME")]
    pub node_name: Option<String>,
    /// HMAC secret for connection and subscription JWTs.
    #[arg(long, env = "RINGCAST_TOKEN_HMAC_SECRET_KEY", hide_env_values = true)]
    pub token_hmac_secret_key: Option<String>,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

#[derive(Debug, Clone, Args)]
pub struct EchoArgs {
    /// Port [default: 9002].
    #[arg(long, env = "RINGCAST_PORT")]
    pub port: Option<u16>,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

#[derive(Debug, Clone, Args)]
pub struct Ws2ApiArgs {
    /// The backend's base URL; the client id is appended to it.
    #[arg(
        long,
        env = "RINGCAST_WS2API_BACKEND",
        default_value = "http://localhost:8000/wsoverhttp/"
    )]
    pub backend: String,
    /// Port for clients (`/<id>`) and the backend's pushes (`POST /<id>`).
    #[arg(long, env = "RINGCAST_PORT", default_value_t = 7001)]
    pub port: u16,
    /// Seconds a backend request may take (waiting for a connection included).
    #[arg(long, env = "RINGCAST_WS2API_TIMEOUT", default_value_t = 10.0)]
    pub timeout: f64,
    /// Requests in flight to the backend at once (each on its own
    /// keep-alive connection); more wait, up to `--backend-queue`.
    #[arg(long, env = "RINGCAST_WS2API_MAX_IN_FLIGHT", default_value_t = 256)]
    pub max_in_flight: usize,
    /// Requests waiting for a backend connection beyond which new ones fail
    /// at once (a message then goes unanswered; a connect gets 502).
    #[arg(long, env = "RINGCAST_WS2API_BACKEND_QUEUE", default_value_t = 100_000)]
    pub backend_queue: usize,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

impl RuntimeArgs {
    /// The file (if any) with these flags applied on top.
    fn load(&self) -> anyhow::Result<Config> {
        let mut cfg = match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        let s = &mut cfg.server;
        if let Some(v) = self.shards {
            s.shards = v;
        }
        if let Some(v) = self.address {
            s.address = v;
        }
        if let Some(v) = self.driver {
            s.driver = v;
        }
        if let Some(no_pin) = self.no_pin {
            s.pin = !no_pin;
        }
        if let Some(v) = self.realtime_priority {
            s.realtime_priority = v;
        }
        if let Some(v) = self.max_message {
            s.max_message = v;
        }
        if let Some(v) = self.handshake_timeout {
            s.handshake_timeout = v;
        }
        if let Some(v) = self.max_connections {
            s.max_connections = v;
        }
        if let Some(v) = self.shutdown_timeout {
            s.shutdown_timeout = v;
        }
        if let Some(v) = self.flush_hold_max {
            s.flush_hold_max = v;
        }
        Ok(cfg)
    }
}

impl ServeArgs {
    fn apply(&self, cfg: &mut Config) {
        if let Some(v) = self.port {
            cfg.server.port = v;
        }
        let c = &mut cfg.client;
        if let Some(v) = self.max_queue {
            c.max_queue = v;
        }
        if let Some(v) = self.insecure {
            c.insecure = v;
        }
        if let Some(v) = self.ping_interval {
            c.ping_interval = v;
        }
        if let Some(v) = self.pong_timeout {
            c.pong_timeout = v;
        }
        if let Some(v) = self.presence {
            cfg.channel.presence = v;
        }
        if let Some(v) = self.join_leave {
            cfg.channel.join_leave = v;
        }
        let a = &mut cfg.api;
        if let Some(v) = self.api_port {
            a.port = v;
        }
        if self.api_key.is_some() {
            a.key = self.api_key.clone();
        }
        if let Some(v) = self.api_insecure {
            a.insecure = v;
        }
        if let Some(v) = self.api_on_client_port {
            a.on_client_port = v;
        }
        if let Some(v) = self.publisher_port {
            a.publisher_port = v;
        }
        if let Some(v) = self.publisher_max_frame {
            a.publisher_max_frame = v;
        }
        let t = &mut cfg.transports;
        for (flag, field) in [
            (self.websocket, &mut t.websocket),
            (self.http_stream, &mut t.http_stream),
            (self.sse, &mut t.sse),
            (self.uni_websocket, &mut t.uni_websocket),
            (self.websocket_compression, &mut t.websocket_compression),
            (self.uni_sse, &mut t.uni_sse),
            (self.uni_http_stream, &mut t.uni_http_stream),
        ] {
            if let Some(v) = flag {
                *field = v;
            }
        }
        if !self.allowed_origin.is_empty() {
            t.allowed_origins = self.allowed_origin.clone();
        }
        let b = &mut cfg.broker;
        if let Some(v) = self.broker {
            b.kind = v;
        }
        if !self.redis_address.is_empty() {
            b.addresses = self.redis_address.clone();
        }
        if let Some(v) = &self.redis_prefix {
            b.prefix = v.clone();
        }
        if !self.redis_sentinel_address.is_empty() {
            b.sentinel_addresses = self.redis_sentinel_address.clone();
        }
        if !self.redis_cluster_address.is_empty() {
            b.cluster_addresses = self.redis_cluster_address.clone();
        }
        if let Some(v) = &self.redis_sentinel_master {
            b.sentinel_master = v.clone();
        }
        if let Some(v) = &self.node_name {
            b.node_name = v.clone();
        }
        if self.token_hmac_secret_key.is_some() {
            cfg.auth.token_hmac_secret_key = self.token_hmac_secret_key.clone();
        }
    }
}

fn shard_config(cfg: &Config, port: u16) -> ShardConfig {
    let s = &cfg.server;
    let mut sc = ShardConfig::new(SocketAddr::new(s.address, port));
    if s.shards > 0 {
        sc.shards = s.shards;
    }
    sc.pin = s.pin;
    sc.realtime_priority = s.realtime_priority;
    sc.driver = s.driver;
    sc.handshake_timeout = Duration::from_secs_f64(s.handshake_timeout);
    sc.shutdown_timeout = Duration::from_secs_f64(s.shutdown_timeout);
    sc.flush_hold_max = Duration::from_secs_f64(s.flush_hold_max);
    sc.connect_rate = cfg.client.connect_rate;
    // The node's floor, split over its shards: a burst's connects are
    // spread over the shards' listeners.
    sc.handshake_workers = s.handshake_workers.div_ceil(sc.shards.max(1));
    sc
}

/// Raises the fd limit, grows the fd table for it, derives the connection
/// ceiling, logs the start-up facts.
fn ceiling(mode: &str, cfg: &Config, sc: &ShardConfig) -> (Arc<Ceiling>, u64) {
    let (limit, derived) = ceiling::from_fd_limit(sc.shards);
    let target = cfg.server.max_connections;
    let max = if target == 0 {
        derived
    } else {
        target.min(derived)
    };
    if target > derived {
        tracing::warn!(
            target,
            fd_limit = limit,
            ceiling = derived,
            "the fd limit cannot carry the configured connection target; raise \
             LimitNOFILE / nofile (scripts/tune.sh plan --connections {target})"
        );
    }
    tracing::info!(
        version = crate::VERSION,
        mode,
        shards = sc.shards,
        fd_limit = limit,
        max_connections = max,
        "ringcast starting"
    );
    (
        Ceiling::with_per_ip(max, cfg.client.max_connections_per_ip),
        limit,
    )
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    // No subcommand: `serve`, with RINGCAST_* applied as for an explicit one.
    let command = match cli.command {
        Some(c) => c,
        None => Cli::parse_from(["ringcast", "serve"])
            .command
            .expect("serve"),
    };
    match command {
        Command::Config(ConfigCommand::Check { file }) => {
            let cfg = ServeArgs::default().runtime_with(&file)?;
            cfg.validate()?;
            print!("{}", cfg.to_toml());
            Ok(())
        }
        Command::Echo(a) => {
            let mut cfg = a.runtime.load()?;
            cfg.validate()?;
            let sc = shard_config(&cfg, a.port.unwrap_or(9002));
            let (ceiling, _) = ceiling("echo", &cfg, &sc);
            let shutdown = on_signals(sc.shards)?;
            // Echo is the conformance target: Autobahn sends 16 MiB messages.
            let max_message = a.runtime.max_message.unwrap_or(64 << 20);
            cfg.server.max_message = max_message;
            shard::run(sc, ceiling, shutdown, move |_| crate::echo::Echo {
                max_message,
            })
        }
        Command::Ws2api(a) => ws2api(a),
        Command::Serve(a) => {
            let mut cfg = a.runtime.load()?;
            a.apply(&mut cfg);
            cfg.validate()?;
            serve(cfg)
        }
    }
}

impl ServeArgs {
    /// `config check`: the file with the environment applied (flags unset).
    fn runtime_with(&self, file: &std::path::Path) -> anyhow::Result<Config> {
        // Re-parse the environment through clap so RINGCAST_* apply exactly as
        // they would for `serve`.
        let args = Cli::parse_from(["ringcast", "serve"]);
        let Some(Command::Serve(mut env)) = args.command else {
            unreachable!("parsed serve");
        };
        env.runtime.config = Some(file.to_path_buf());
        let mut cfg = env.runtime.load()?;
        env.apply(&mut cfg);
        Ok(cfg)
    }
}

/// Runs `ringcast serve` with a complete configuration.
pub fn serve(cfg: Config) -> anyhow::Result<()> {
    let mut sc = shard_config(&cfg, cfg.server.port);
    sc.extra_listen = vec![
        SocketAddr::new(cfg.server.address, cfg.api.port),
        SocketAddr::new(cfg.server.address, cfg.api.publisher_port),
    ];
    sc.extra_names = vec!["api", "publisher"];
    let (ceiling, fd_limit) = ceiling("serve", &cfg, &sc);
    let mut opts = ClientOptions::from_config(&cfg)?;
    if cfg.client.insecure {
        tracing::warn!("client insecure mode: clients connect without a token and may do anything");
    }
    let api = Arc::new(ApiOptions {
        key: cfg.api.key.clone().filter(|k| !k.is_empty()),
        insecure: cfg.api.insecure,
        on_client_port: cfg.api.on_client_port,
        publisher_max_frame: cfg.api.publisher_max_frame,
        ..ApiOptions::default()
    });
    if api.key.is_none() && !api.insecure {
        tracing::warn!("no API key: the server API answers 401 (metrics and health still served)");
    }
    let name = if cfg.broker.node_name.is_empty() {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "ringcast".into());
        format!("{host}:{}", cfg.server.port)
    } else {
        cfg.broker.node_name.clone()
    };
    // Mesh sources beyond the shards: the Redis thread, the backend thread.
    let redis = cfg.broker.kind == BrokerKind::Redis;
    let externals = redis as usize + !cfg.proxy.is_empty() as usize;
    let mesh = Mesh::with_external(sc.shards, externals);
    opts.proxies = crate::proxy::Proxies::start(&cfg, mesh.clone(), sc.shards + redis as usize)?;
    if let Some(p) = &opts.proxies {
        tracing::info!(proxies = ?p.backends.endpoints.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), "application backends");
    }
    let opts = Arc::new(opts);
    let node = Arc::new(NodeInfo {
        uid: opts.node_uid.clone(),
        name: name.into(),
        started: Instant::now(),
        fd_limit,
    });
    let shutdown = on_signals(sc.shards)?;
    let config = Arc::new(cfg.clone());
    // How a control action (the API's, or another node's) reaches a shard's
    // client sessions.
    let control: ControlHandler = Arc::new(crate::client::admin::apply);
    let (mesh, brokers): (_, BrokerFactory) = match cfg.broker.kind {
        BrokerKind::Memory => (
            mesh,
            Arc::new(|| {
                (
                    Box::new(MemoryBroker::default()) as Box<dyn Broker>,
                    Box::new(MemoryPresence) as Box<dyn PresenceManager>,
                )
            }),
        ),
        BrokerKind::Redis => {
            // Mesh source `shards`: the Redis thread.
            let shared = crate::broker::redis::start(
                config.clone(),
                mesh.clone(),
                node.uid.clone(),
                control.clone(),
            )?;
            tracing::info!(
                redis = ?shared.links.iter().map(|l| l.addr.as_str()).collect::<Vec<_>>(),
                node = %node.name,
                "broker: redis"
            );
            let config = config.clone();
            (
                mesh,
                Arc::new(move || {
                    (
                        Box::new(RedisBroker::new(shared.clone())) as Box<dyn Broker>,
                        Box::new(RedisPresence::new(shared.clone(), config.clone()))
                            as Box<dyn PresenceManager>,
                    )
                }),
            )
        }
    };
    let parts = NodeParts {
        mesh,
        client: opts,
        api,
        node,
        control,
    };
    shard::run(sc, ceiling, shutdown, move |env| {
        NodeService::start(env, &parts, brokers())
    })
}

/// Runs `ringcast ws2api`.
fn ws2api(a: Ws2ApiArgs) -> anyhow::Result<()> {
    use crate::proxy::backend::{Backends, Endpoint};
    use crate::proxy::ws2api::{Ws2Api, Ws2ApiParts};
    let cfg = a.runtime.load()?;
    cfg.validate()?;
    let url_ok = (a.backend.starts_with("http://") || a.backend.starts_with("https://"))
        && reqwest::Url::parse(&a.backend).is_ok();
    if !url_ok {
        anyhow::bail!(
            "--backend: {:?} is not an http:// or https:// URL",
            a.backend
        );
    }
    if !(a.timeout.is_finite() && a.timeout > 0.0) || a.max_in_flight == 0 {
        anyhow::bail!("--timeout must be > 0 and --max-in-flight at least 1");
    }
    let sc = shard_config(&cfg, a.port);
    let (ceiling, _) = ceiling("ws2api", &cfg, &sc);
    let shutdown = on_signals(sc.shards)?;
    // One mesh source beyond the shards: the backend thread.
    let mesh = Mesh::with_external(sc.shards, 1);
    let endpoint = Endpoint {
        name: "ws2api".into(),
        url: a.backend.clone(),
        timeout: Duration::from_secs_f64(a.timeout),
        static_headers: Vec::new(),
        max_in_flight: a.max_in_flight,
        max_queue: a.backend_queue,
    };
    let backends = Backends::start(vec![endpoint], mesh.clone(), sc.shards)?;
    tracing::info!(backend = %crate::config::redact(&a.backend), "ws2api");
    let parts = Ws2ApiParts {
        mesh,
        max_message: cfg.server.max_message,
        config: Arc::new(cfg),
        backends,
        counters: Arc::default(),
    };
    let grace = sc.shutdown_timeout;
    let (signalled, drained) = (shutdown.clone(), parts.backends.clone());
    shard::run(sc, ceiling, shutdown, move |env| {
        std::rc::Rc::new(Ws2Api::start(env, &parts))
    })?;
    // The shards have stopped; the backend calls they handed over (the
    // closes' DELETEs, accepted messages' POSTs) go out before the process
    // ends, within the same shutdown deadline.
    let from = signalled.triggered_at().unwrap_or_else(Instant::now);
    drained.drain(from + grace);
    Ok(())
}

/// Builds one shard's broker handle.
type BrokerFactory = Arc<dyn Fn() -> crate::client::Brokers + Send + Sync>;

/// SIGTERM/SIGINT start a graceful shutdown; a second one exits at once.
fn on_signals(shards: usize) -> anyhow::Result<Arc<Shutdown>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let shutdown = Shutdown::new(shards);
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])?;
    let s = shutdown.clone();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if s.is_triggered() {
                    tracing::warn!(signal = sig, "second signal: exiting now");
                    std::process::exit(130);
                }
                tracing::info!(signal = sig, "graceful shutdown");
                s.trigger();
            }
        })?;
    Ok(shutdown)
}
