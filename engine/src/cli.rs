//! Command line: `ringcast serve` (default) and `ringcast echo`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};

use crate::api::ApiOptions;
use crate::client::{ClientOptions, ClientService, NodeInfo};
use crate::hub::mesh::Mesh;
use crate::hub::HubOptions;
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
    Serve(ServeArgs),
    /// Run a WebSocket echo server on the same shards and codec.
    Echo(EchoArgs),
}

/// Options every server mode shares.
#[derive(Debug, Clone, Args)]
pub struct RuntimeArgs {
    /// Shards (threads, one per core). Default: online CPUs.
    #[arg(long, env = "RINGCAST_SHARDS")]
    pub shards: Option<usize>,
    /// Address to listen on.
    #[arg(long, env = "RINGCAST_ADDRESS", default_value = "0.0.0.0")]
    pub address: IpAddr,
    /// I/O driver: auto (io_uring, falling back to epoll), uring, epoll.
    #[arg(long, env = "RINGCAST_DRIVER", value_enum, default_value_t = DriverChoice::Auto)]
    pub driver: DriverChoice,
    /// Do not pin shard threads to cores.
    #[arg(long, env = "RINGCAST_NO_PIN")]
    pub no_pin: bool,
    /// Largest WebSocket message accepted, bytes (larger: close 1009).
    #[arg(long, env = "RINGCAST_MAX_MESSAGE")]
    pub max_message: Option<usize>,
    /// Seconds a client has to complete the upgrade request.
    #[arg(long, env = "RINGCAST_HANDSHAKE_TIMEOUT", default_value_t = 10.0)]
    pub handshake_timeout: f64,
    /// Cap on client connections (default: the fd limit minus a reserve).
    #[arg(long, env = "RINGCAST_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Seconds a graceful shutdown (SIGTERM/SIGINT) waits for clients to be
    /// told and their queues flushed.
    #[arg(long, env = "RINGCAST_SHUTDOWN_TIMEOUT", default_value_t = 10.0)]
    pub shutdown_timeout: f64,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Client WebSocket port.
    #[arg(long, env = "RINGCAST_PORT", default_value_t = 8000)]
    pub port: u16,
    /// Outbound bytes queued for one client before it is cut with 3008.
    #[arg(long, env = "RINGCAST_MAX_QUEUE", default_value_t = 1 << 20)]
    pub max_queue: usize,
    /// Accept clients without a token and allow client-side publish.
    #[arg(long, env = "RINGCAST_INSECURE")]
    pub insecure: bool,
    /// Keep channel presence (the presence and presence_stats commands).
    #[arg(long, env = "RINGCAST_PRESENCE")]
    pub presence: bool,
    /// Push join/leave messages to channel subscribers.
    #[arg(long, env = "RINGCAST_JOIN_LEAVE")]
    pub join_leave: bool,
    /// Seconds between server pings.
    #[arg(long, env = "RINGCAST_PING_INTERVAL", default_value_t = 25)]
    pub ping_interval: u64,
    /// Seconds a client has to answer a ping (capped at half the interval).
    #[arg(long, env = "RINGCAST_PONG_TIMEOUT", default_value_t = 8.0)]
    pub pong_timeout: f64,
    /// Internal port: server API, /metrics, /health (same address as --address).
    #[arg(long, env = "RINGCAST_API_PORT", default_value_t = 9000)]
    pub api_port: u16,
    /// Key the server API requires (X-API-Key or `Authorization: apikey KEY`).
    #[arg(long, env = "RINGCAST_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Serve the server API without a key (trusted networks only).
    #[arg(long, env = "RINGCAST_API_INSECURE")]
    pub api_insecure: bool,
    /// TCP publisher port (docs/publisher-protocol.md); authenticated with the API key.
    #[arg(long, env = "RINGCAST_PUBLISHER_PORT", default_value_t = 9001)]
    pub publisher_port: u16,
    /// Largest TCP publisher frame, bytes.
    #[arg(long, env = "RINGCAST_PUBLISHER_MAX_FRAME", default_value_t = 1 << 20)]
    pub publisher_max_frame: usize,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

#[derive(Debug, Clone, Args)]
pub struct EchoArgs {
    #[arg(long, env = "RINGCAST_PORT", default_value_t = 9002)]
    pub port: u16,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

impl RuntimeArgs {
    fn shard_config(&self, port: u16) -> ShardConfig {
        let mut cfg = ShardConfig::new(SocketAddr::new(self.address, port));
        if let Some(n) = self.shards {
            cfg.shards = n.max(1);
        }
        cfg.pin = !self.no_pin;
        cfg.driver = self.driver;
        cfg.handshake_timeout = Duration::from_secs_f64(self.handshake_timeout.max(0.001));
        cfg.shutdown_timeout = Duration::from_secs_f64(self.shutdown_timeout.max(0.0));
        cfg
    }

    /// Raises the fd limit and logs the start-up facts.
    fn ceiling(&self, mode: &str, cfg: &ShardConfig) -> (Arc<Ceiling>, u64) {
        let (limit, derived) = ceiling::from_fd_limit(cfg.shards);
        let max = self.max_connections.map_or(derived, |m| m.min(derived));
        if let Some(target) = self.max_connections.filter(|&m| m > derived) {
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
            shards = cfg.shards,
            fd_limit = limit,
            max_connections = max,
            "ringcast starting"
        );
        (Ceiling::new(max), limit)
    }
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let command = match cli.command {
        Some(c) => c,
        None => Cli::parse_from(["ringcast", "serve"])
            .command
            .expect("serve"),
    };
    match command {
        Command::Echo(a) => {
            let cfg = a.runtime.shard_config(a.port);
            let (ceiling, _) = a.runtime.ceiling("echo", &cfg);
            let shutdown = on_signals(cfg.shards)?;
            let max_message = a.runtime.max_message.unwrap_or(64 << 20);
            shard::run(cfg, ceiling, shutdown, move |_| crate::echo::Echo {
                max_message,
            })
        }
        Command::Serve(a) => {
            let mut cfg = a.runtime.shard_config(a.port);
            cfg.extra_listen = vec![
                SocketAddr::new(a.runtime.address, a.api_port),
                SocketAddr::new(a.runtime.address, a.publisher_port),
            ];
            let (ceiling, fd_limit) = a.runtime.ceiling("serve", &cfg);
            let opts = Arc::new(ClientOptions {
                insecure: a.insecure,
                max_message: a.runtime.max_message.unwrap_or(64 << 10),
                max_queue: a.max_queue,
                ping_interval: Duration::from_secs(a.ping_interval.max(1)),
                pong_timeout: Duration::from_secs_f64(a.pong_timeout.max(0.1)),
                hub: HubOptions {
                    presence: a.presence,
                    join_leave: a.join_leave,
                },
                ..ClientOptions::default()
            });
            if opts.insecure {
                tracing::warn!("--insecure: clients connect without a token and may publish");
            }
            let api = Arc::new(ApiOptions {
                key: a.api_key.clone(),
                insecure: a.api_insecure,
                publisher_max_frame: a.publisher_max_frame,
                ..ApiOptions::default()
            });
            if api.key.is_none() && !api.insecure {
                tracing::warn!(
                    "no --api-key: the server API answers 401 (metrics and health still served)"
                );
            }
            let node = Arc::new(NodeInfo {
                uid: new_uid().into(),
                name: std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .map(|h| h.trim().to_string())
                    .unwrap_or_else(|_| "ringcast".into())
                    .into(),
                started: Instant::now(),
                fd_limit,
            });
            let shutdown = on_signals(cfg.shards)?;
            let mesh = Mesh::new(cfg.shards);
            shard::run(cfg, ceiling, shutdown, move |env| {
                ClientService::start(env, mesh.clone(), opts.clone(), api.clone(), &node)
            })
        }
    }
}

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

fn new_uid() -> String {
    format!("{:032x}", fastrand::u128(..))
}
