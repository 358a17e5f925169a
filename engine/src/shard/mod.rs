//! Shards: one OS thread per core, pinned, each running its own monoio runtime
//! with its own listener on the shared port. A connection is accepted, served
//! and closed on one shard; shards share no mutable state.

pub mod ceiling;
pub mod conn;
pub mod driver;
pub mod listener;
pub mod service;
pub mod stats;
pub mod task;

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use bytes::BytesMut;
use monoio::net::TcpListener;

use self::ceiling::Ceiling;
use self::driver::{DriverChoice, DriverKind};
use self::service::Service;
use self::stats::ShardStats;
use crate::ws::handshake;

/// Transport settings shared by every shard.
#[derive(Debug, Clone)]
pub struct ShardConfig {
    pub listen: SocketAddr,
    pub shards: usize,
    /// Pin shard i to the i-th online core.
    pub pin: bool,
    pub driver: DriverChoice,
    pub ring_entries: u32,
    pub backlog: i32,
    pub handshake_timeout: Duration,
    pub max_handshake: usize,
    pub close_timeout: Duration,
}

impl ShardConfig {
    pub fn new(listen: SocketAddr) -> Self {
        ShardConfig {
            listen,
            shards: default_shards(),
            pin: true,
            driver: DriverChoice::Auto,
            ring_entries: 4096,
            backlog: 4096,
            handshake_timeout: Duration::from_secs(10),
            max_handshake: 8 * 1024,
            close_timeout: Duration::from_secs(3),
        }
    }
}

pub fn default_shards() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// What a shard owns. Lives on its thread only.
pub struct ShardCtx<S: Service> {
    pub id: usize,
    pub cfg: Arc<ShardConfig>,
    pub service: S,
    pub stats: ShardStats,
    /// The read buffer every connection of this shard reads into.
    pub(crate) scratch: RefCell<BytesMut>,
    next_id: Cell<u64>,
}

impl<S: Service> ShardCtx<S> {
    pub(crate) fn next_conn_id(&self) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        id
    }
}

/// One shard's start-up report to the main thread.
#[derive(Debug)]
pub struct ShardReady {
    pub id: usize,
    pub core: Option<usize>,
    pub driver: DriverKind,
}

/// Starts the shards and blocks until they all exit. `make_service(i)` builds
/// shard i's service on its own thread.
pub fn run<S, F>(cfg: ShardConfig, ceiling: Arc<Ceiling>, make_service: F) -> anyhow::Result<()>
where
    S: Service,
    F: Fn(usize) -> S + Send + Sync + 'static,
{
    let mut cfg = cfg;
    if cfg.listen.port() == 0 {
        // Every shard must bind the same port: resolve it once up front.
        let probe = listener::bind_reuseport(cfg.listen, 1)?;
        cfg.listen = probe.local_addr()?;
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
        let (cfg, ceiling, make_service, ready_tx) = (
            cfg.clone(),
            ceiling.clone(),
            make_service.clone(),
            ready_tx.clone(),
        );
        let t = std::thread::Builder::new()
            .name(format!("shard-{id}"))
            .spawn(move || {
                let pinned = core
                    .filter(|c| core_affinity::set_for_current(*c))
                    .map(|c| c.id);
                let listener = match listener::bind_reuseport(cfg.listen, cfg.backlog) {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = ready_tx
                            .send(Err(anyhow::anyhow!("shard {id}: bind {}: {e}", cfg.listen)));
                        return;
                    }
                };
                let result = driver::block_on(cfg.driver, cfg.ring_entries, |kind| {
                    shard_main(
                        id,
                        pinned,
                        kind,
                        cfg.clone(),
                        ceiling,
                        listener,
                        &*make_service,
                        ready_tx.clone(),
                    )
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
                "shard ready"
            ),
            Ok(Err(e)) => return Err(e),
            Err(_) => anyhow::bail!("a shard exited during start-up"),
        }
    }
    tracing::info!(listen = %cfg.listen, shards = cfg.shards, "listening");
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn shard_main<S: Service>(
    id: usize,
    core: Option<usize>,
    driver: DriverKind,
    cfg: Arc<ShardConfig>,
    ceiling: Arc<Ceiling>,
    std_listener: std::net::TcpListener,
    make_service: &(dyn Fn(usize) -> S + Send + Sync),
    ready: mpsc::Sender<anyhow::Result<ShardReady>>,
) {
    let listener = match TcpListener::from_std(std_listener) {
        Ok(l) => l,
        Err(e) => {
            let _ = ready.send(Err(anyhow::anyhow!("shard {id}: listener: {e}")));
            return;
        }
    };
    let shard = Rc::new(ShardCtx {
        id,
        cfg: cfg.clone(),
        service: make_service(id),
        stats: ShardStats::default(),
        scratch: RefCell::new(BytesMut::new()),
        next_id: Cell::new(1),
    });
    let _ = ready.send(Ok(ShardReady { id, core, driver }));
    drop(ready);
    accept_loop(shard, listener, ceiling).await;
}

async fn accept_loop<S: Service>(
    shard: Rc<ShardCtx<S>>,
    listener: TcpListener,
    ceiling: Arc<Ceiling>,
) {
    let mut last_emfile_log = None::<std::time::Instant>;
    loop {
        match listener.accept().await {
            Ok((stream, _peer)) => match ceiling.try_acquire() {
                Some(slot) => {
                    let shard = shard.clone();
                    monoio::spawn(async move {
                        task::serve(shard, stream).await;
                        drop(slot);
                    });
                }
                None => {
                    shard.stats.refused();
                    monoio::spawn(refuse_at_ceiling(stream));
                }
            },
            Err(e) => {
                // EMFILE/ENFILE/ENOBUFS: back off instead of spinning on a
                // listener that stays readable.
                let now = std::time::Instant::now();
                if last_emfile_log.is_none_or(|t| now.duration_since(t) > Duration::from_secs(5)) {
                    tracing::warn!(shard = shard.id, error = %e, "accept failed; backing off");
                    last_emfile_log = Some(now);
                }
                monoio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn refuse_at_ceiling(stream: monoio::net::TcpStream) {
    let resp = handshake::plain_response(
        503,
        "Service Unavailable",
        "Retry-After: 5\r\n",
        "connection limit reached",
    );
    let _ = monoio::time::timeout(Duration::from_secs(2), task::write_all(&stream, &resp)).await;
}
