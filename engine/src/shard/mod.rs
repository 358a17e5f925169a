//! Shards: one OS thread per core, pinned, each running its own monoio runtime
//! with its own listeners on the shared ports. A connection is accepted, served
//! and closed on one shard; shards share no mutable state.

pub mod ceiling;
pub mod conn;
pub mod driver;
pub mod framing;
pub(crate) mod handshakes;
pub mod latency;
pub mod listener;
pub(crate) mod outbox;
mod outq;
pub mod plain;
pub(crate) mod reactor;
pub mod service;
pub mod shutdown;
pub mod stats;
pub mod task;
pub(crate) mod trim;

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use monoio::net::{TcpListener, TcpStream};

use self::ceiling::{Ceiling, Refusal};
use self::conn::Conn;
use self::driver::{DriverChoice, DriverKind};
use self::service::Service;
use self::shutdown::Shutdown;
use self::stats::ShardStats;
use crate::ws::handshake;

/// Transport settings shared by every shard.
#[derive(Debug, Clone)]
pub struct ShardConfig {
    /// The WebSocket listener.
    pub listen: SocketAddr,
    /// Further listeners served by `Service::serve_extra` (API, publishers).
    pub extra_listen: Vec<SocketAddr>,
    /// Their names in the ready line (`api`, `publisher`).
    pub extra_names: Vec<&'static str>,
    pub shards: usize,
    /// Pin shard i to the i-th online core.
    pub pin: bool,
    /// SCHED_FIFO priority of the shard threads (0: the normal policy); a
    /// shard that cannot take it fails the start.
    pub realtime_priority: u8,
    pub driver: DriverChoice,
    pub ring_entries: u32,
    pub backlog: i32,
    pub handshake_timeout: Duration,
    pub max_handshake: usize,
    pub close_timeout: Duration,
    /// How long a graceful shutdown waits for connections to flush and close.
    pub shutdown_timeout: Duration,
    /// New upgrades accepted per second per shard; beyond it: 503 (0: unlimited).
    pub connect_rate: u32,
    /// Longest hold of a flush pass after a big pass of small sends (zero:
    /// no holds); see the reactor.
    pub flush_hold_max: Duration,
    /// Handshake workers this shard spawns at start and keeps (more are
    /// spawned for a bigger burst and exit after it): its part of the
    /// node's `[server] handshake_workers` (`cli::shard_config`).
    pub handshake_workers: usize,
}

impl ShardConfig {
    pub fn new(listen: SocketAddr) -> Self {
        ShardConfig {
            listen,
            extra_listen: Vec::new(),
            extra_names: Vec::new(),
            shards: default_shards(),
            pin: true,
            realtime_priority: 0,
            driver: DriverChoice::Auto,
            ring_entries: 4096,
            backlog: 4096,
            handshake_timeout: Duration::from_secs(10),
            max_handshake: 8 * 1024,
            close_timeout: Duration::from_secs(3),
            shutdown_timeout: Duration::from_secs(10),
            connect_rate: 0,
            flush_hold_max: Duration::from_millis(100),
            handshake_workers: 256,
        }
    }
}

pub fn default_shards() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// What a service factory gets to build shard `id`'s service with.
pub struct ShardEnv {
    pub id: usize,
    pub stats: Rc<ShardStats>,
    pub ceiling: Arc<Ceiling>,
}

/// What a shard owns. Lives on its thread only.
pub struct ShardCtx<S: Service> {
    pub id: usize,
    pub cfg: Arc<ShardConfig>,
    pub service: S,
    pub stats: Rc<ShardStats>,
    /// The read buffer every connection of this shard reads into.
    pub(crate) scratch: RefCell<BytesMut>,
    /// Every upgraded connection of the shard.
    pub(crate) reactor: reactor::Reactor<S::State>,
    /// The tasks that serve accepted connections' handshakes.
    pub(crate) handshakes: handshakes::Handshakes,
    stopping: Cell<bool>,
}

impl<S: Service> ShardCtx<S> {
    /// Whether graceful shutdown has begun on this shard.
    pub fn is_stopping(&self) -> bool {
        self.stopping.get()
    }
}

/// One shard's start-up report to the main thread.
#[derive(Debug)]
pub struct ShardReady {
    pub id: usize,
    pub core: Option<usize>,
    pub driver: DriverKind,
}

/// Puts the calling shard thread under SCHED_FIFO at `priority` (0: leaves
/// it as it is). Refused, it says what would allow it.
fn take_realtime(priority: u8) -> anyhow::Result<()> {
    if priority == 0 {
        return Ok(());
    }
    crate::sys::set_realtime(priority).map_err(|e| {
        let hint = if e.raw_os_error() == Some(libc::EPERM) {
            format!(
                ": needs CAP_SYS_NICE or an RLIMIT_RTPRIO of at least {priority} \
                 (systemd: LimitRTPRIO={priority} and RestrictRealtime=no; \
                 a shell: ulimit -r {priority})"
            )
        } else {
            String::new()
        };
        anyhow::anyhow!("realtime priority {priority} (SCHED_FIFO): {e}{hint}")
    })
}

/// Binds every configured address on one shard (all shards share the ports).
fn bind_all(cfg: &ShardConfig) -> std::io::Result<Vec<std::net::TcpListener>> {
    std::iter::once(cfg.listen)
        .chain(cfg.extra_listen.iter().copied())
        .map(|a| listener::bind_reuseport(a, cfg.backlog))
        .collect()
}

/// Resolves port 0 to a concrete free port, so every shard binds the same
/// one. The returned socket holds the port (bound, not listening) until
/// the shards have bound it: dropped before, the next port-0 address of
/// the process could be given the same port, and the kernel would then
/// spread one port's connections over two services' listeners.
fn resolve_port(addr: &mut SocketAddr) -> std::io::Result<Option<socket2::Socket>> {
    if addr.port() != 0 {
        return Ok(None);
    }
    let probe = listener::bound_reuseport(*addr)?;
    *addr = probe
        .local_addr()?
        .as_socket()
        .ok_or_else(|| std::io::Error::other("not an inet socket"))?;
    Ok(Some(probe))
}

/// Starts the shards and blocks until they have all stopped (after
/// `shutdown` is triggered). `make_service` builds each shard's service on
/// that shard's own thread and runtime.
pub fn run<S, F>(
    mut cfg: ShardConfig,
    ceiling: Arc<Ceiling>,
    shutdown: Arc<Shutdown>,
    make_service: F,
) -> anyhow::Result<()>
where
    S: Service,
    F: Fn(&ShardEnv) -> S + Send + Sync + 'static,
{
    let mut held = Vec::new();
    held.extend(resolve_port(&mut cfg.listen)?);
    for a in cfg.extra_listen.iter_mut() {
        held.extend(resolve_port(a)?);
    }
    let cfg = Arc::new(cfg);
    let make_service = Arc::new(make_service);
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let (ready_tx, ready_rx) = mpsc::channel::<anyhow::Result<ShardReady>>();
    let mut threads = Vec::with_capacity(cfg.shards);
    for id in 0..cfg.shards {
        let core = if cfg.pin && !cores.is_empty() {
            Some(cores[id % cores.len()])
        } else {
            None
        };
        let (cfg, ceiling, shutdown, make_service, ready_tx) = (
            cfg.clone(),
            ceiling.clone(),
            shutdown.clone(),
            make_service.clone(),
            ready_tx.clone(),
        );
        let t = std::thread::Builder::new()
            .name(format!("shard-{id}"))
            .spawn(move || {
                let pinned = core
                    .filter(|c| core_affinity::set_for_current(*c))
                    .map(|c| c.id);
                if let Err(e) = take_realtime(cfg.realtime_priority) {
                    let _ = ready_tx.send(Err(e.context(format!("shard {id}"))));
                    return;
                }
                let listeners = match bind_all(&cfg) {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = ready_tx.send(Err(anyhow::anyhow!("shard {id}: bind: {e}")));
                        return;
                    }
                };
                let result = driver::block_on(cfg.driver, cfg.ring_entries, |kind| {
                    let boot = Boot {
                        id,
                        core: pinned,
                        driver: kind,
                        cfg: cfg.clone(),
                        ceiling,
                        shutdown,
                        ready: ready_tx.clone(),
                    };
                    shard_main(boot, listeners, &*make_service)
                });
                if let Err(e) = result {
                    let _ = ready_tx.send(Err(e.context(format!("shard {id}"))));
                }
            })?;
        threads.push(t);
    }
    drop(ready_tx);
    for _ in 0..cfg.shards {
        match ready_rx.recv() {
            Ok(Ok(r)) => tracing::info!(
                shard = r.id,
                core = r.core.map_or("unpinned".to_string(), |c| c.to_string()),
                driver = %r.driver,
                realtime_priority = cfg.realtime_priority,
                "shard ready"
            ),
            Ok(Err(e)) => {
                shutdown.trigger();
                return Err(e);
            }
            Err(_) => anyhow::bail!("a shard exited during start-up"),
        }
    }
    // Every shard listens on its ports now: the placeholders can go.
    drop(held);
    let extra: Vec<String> = cfg.extra_listen.iter().map(|a| a.to_string()).collect();
    tracing::info!(listen = %cfg.listen, extra = ?extra, shards = cfg.shards, "listening");
    println!("{}", ready_line(&cfg));
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}

/// The one line on stdout once every listener is bound, for scripts and
/// tests: `{"ready":{"listen":"ADDR","api":"ADDR","publisher":"ADDR",
/// "shards":N,"pid":P}}` (the extra listeners by name).
fn ready_line(cfg: &ShardConfig) -> String {
    let mut ready = serde_json::Map::new();
    ready.insert("listen".into(), cfg.listen.to_string().into());
    for (i, addr) in cfg.extra_listen.iter().enumerate() {
        let name = cfg.extra_names.get(i).copied().unwrap_or("extra");
        ready.insert(name.into(), addr.to_string().into());
    }
    ready.insert("shards".into(), cfg.shards.into());
    ready.insert("pid".into(), std::process::id().into());
    serde_json::json!({ "ready": ready }).to_string()
}

struct Boot {
    id: usize,
    core: Option<usize>,
    driver: DriverKind,
    cfg: Arc<ShardConfig>,
    ceiling: Arc<Ceiling>,
    shutdown: Arc<Shutdown>,
    ready: mpsc::Sender<anyhow::Result<ShardReady>>,
}

async fn shard_main<S: Service>(
    boot: Boot,
    listeners: Vec<std::net::TcpListener>,
    make_service: &(dyn Fn(&ShardEnv) -> S + Send + Sync),
) {
    let id = boot.id;
    let mut monoio_listeners = Vec::with_capacity(listeners.len());
    for l in listeners {
        match TcpListener::from_std(l) {
            Ok(l) => monoio_listeners.push(l),
            Err(e) => {
                let _ = boot
                    .ready
                    .send(Err(anyhow::anyhow!("shard {id}: listener: {e}")));
                return;
            }
        }
    }
    let stats = Rc::new(ShardStats::default());
    stats.driver.set(match boot.driver {
        DriverKind::IoUring => "io_uring",
        DriverKind::Epoll => "epoll",
    });
    let env = ShardEnv {
        id,
        stats: stats.clone(),
        ceiling: boot.ceiling.clone(),
    };
    let service = make_service(&env);
    let reactor = match reactor::Reactor::new(task::queue_limit(&service), boot.ceiling.clone()) {
        Ok(r) => r,
        Err(e) => {
            let _ = boot
                .ready
                .send(Err(anyhow::anyhow!("shard {id}: epoll: {e}")));
            return;
        }
    };
    let shard = Rc::new(ShardCtx {
        id,
        cfg: boot.cfg.clone(),
        service,
        stats,
        scratch: RefCell::new(BytesMut::new()),
        reactor,
        handshakes: handshakes::Handshakes::new(boot.cfg.handshake_workers),
        stopping: Cell::new(false),
    });
    monoio::spawn(reactor::run(shard.clone()));
    monoio::spawn(trim::run(shard.clone()));
    handshakes::start(&shard);
    let mut listeners = monoio_listeners.into_iter();
    let ws = listeners.next().expect("the WebSocket listener");
    monoio::spawn(accept_loop(shard.clone(), ws, None, boot.ceiling.clone()));
    for (which, l) in listeners.enumerate() {
        monoio::spawn(accept_loop(
            shard.clone(),
            l,
            Some(which),
            boot.ceiling.clone(),
        ));
    }
    let _ = boot.ready.send(Ok(ShardReady {
        id,
        core: boot.core,
        driver: boot.driver,
    }));
    drop(boot.ready);

    boot.shutdown.wait(id).await;
    drain(&shard).await;
}

/// Graceful shutdown on one shard: refuse new connections, send every
/// connection its close, and wait for them to flush and go, up to the timeout.
async fn drain<S: Service>(shard: &Rc<ShardCtx<S>>) {
    shard.stopping.set(true);
    let (code, reason) = shard.service.shutdown_close();
    let conns: Vec<Rc<Conn>> = shard.reactor.conns();
    tracing::info!(shard = shard.id, connections = conns.len(), "shutting down");
    for c in &conns {
        c.close_with(code, reason);
    }
    drop(conns);
    let deadline = Instant::now() + shard.cfg.shutdown_timeout;
    while shard.reactor.len() > 0 && Instant::now() < deadline {
        monoio::time::sleep(Duration::from_millis(10)).await;
    }
    let left = shard.reactor.len();
    if left > 0 {
        tracing::warn!(
            shard = shard.id,
            left,
            "shutdown timeout: dropping connections"
        );
    }
}

async fn accept_loop<S: Service>(
    shard: Rc<ShardCtx<S>>,
    listener: TcpListener,
    extra: Option<usize>,
    ceiling: Arc<Ceiling>,
) {
    let mut last_error_log = None::<Instant>;
    // Accept-rate window: (second it started, connections admitted in it).
    let mut window = (Instant::now(), 0u32);
    loop {
        match listener.accept().await {
            Ok(_) if shard.is_stopping() => {}
            Ok((stream, _)) if extra.is_some() => {
                monoio::spawn(S::serve_extra(shard.clone(), extra.unwrap_or(0), stream));
            }
            Ok((stream, peer)) => {
                let rate = shard.cfg.connect_rate;
                if rate > 0 {
                    let now = Instant::now();
                    if now.duration_since(window.0) >= Duration::from_secs(1) {
                        window = (now, 0);
                    }
                    window.1 += 1;
                    if window.1 > rate {
                        shard.stats.refused();
                        monoio::spawn(refuse(stream, "connect rate limit reached", 1));
                        continue;
                    }
                }
                match ceiling.acquire_for(peer.ip()) {
                    Ok(slot) => handshakes::dispatch(&shard, stream, slot),
                    Err(why) => {
                        shard.stats.refused();
                        let reason = match why {
                            Refusal::Full => "connection limit reached",
                            Refusal::PerAddress => "too many connections from this address",
                        };
                        monoio::spawn(refuse(stream, reason, 5));
                    }
                }
            }
            Err(e) => {
                // EMFILE/ENFILE/ENOBUFS: back off instead of spinning on a
                // listener that stays readable.
                let now = Instant::now();
                if last_error_log.is_none_or(|t| now.duration_since(t) > Duration::from_secs(5)) {
                    tracing::warn!(shard = shard.id, error = %e, "accept failed; backing off");
                    last_error_log = Some(now);
                }
                monoio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// 503 before the upgrade, with when to come back.
async fn refuse(stream: TcpStream, reason: &'static str, retry_after: u32) {
    let resp = handshake::plain_response(
        503,
        "Service Unavailable",
        &format!("Retry-After: {retry_after}\r\n"),
        reason,
    );
    let _ = monoio::time::timeout(Duration::from_secs(2), task::write_all(&stream, &resp)).await;
}
