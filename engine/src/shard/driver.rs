//! Runtime construction: io_uring where the kernel allows it, epoll otherwise.
//! Never panics: io_uring set-up failures (ENOSYS under seccomp, EPERM from
//! `kernel.io_uring_disabled`, ENOMEM from the memlock limit) fall back to epoll
//! with a warning, unless io_uring was demanded.

use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};

use monoio::{IoUringDriver, LegacyDriver, RuntimeBuilder};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize, serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum DriverChoice {
    /// io_uring, falling back to epoll when it cannot be set up.
    Auto,
    /// io_uring or fail.
    Uring,
    /// epoll only.
    Epoll,
}

/// The driver a shard actually runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriverKind {
    IoUring,
    Epoll,
}

impl fmt::Display for DriverKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DriverKind::IoUring => "io_uring",
            DriverKind::Epoll => "epoll",
        })
    }
}

/// Builds a runtime of the chosen kind and runs `make(kind)` to completion on it.
pub fn block_on<F, Fut>(choice: DriverChoice, entries: u32, make: F) -> anyhow::Result<Fut::Output>
where
    F: FnOnce(DriverKind) -> Fut,
    Fut: Future,
{
    if choice != DriverChoice::Epoll {
        let built = catch_unwind(AssertUnwindSafe(|| {
            RuntimeBuilder::<IoUringDriver>::new()
                .with_entries(entries)
                .enable_timer()
                .build()
        }));
        let err = match built {
            Ok(Ok(mut rt)) => return Ok(rt.block_on(make(DriverKind::IoUring))),
            Ok(Err(e)) => e.to_string(),
            Err(panic) => panic_message(&panic),
        };
        if choice == DriverChoice::Uring {
            anyhow::bail!("io_uring runtime could not be set up: {err}");
        }
        tracing::warn!(error = %err, "io_uring unavailable, falling back to epoll");
    }
    let mut rt = RuntimeBuilder::<LegacyDriver>::new()
        .enable_timer()
        .build()
        .map_err(|e| anyhow::anyhow!("epoll runtime could not be set up: {e}"))?;
    Ok(rt.block_on(make(DriverKind::Epoll)))
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic while setting up io_uring".into())
}
