use std::time::Duration;

use clap::Parser;
use ringcast_peer_tokio_ws::{serve, Config};
use tokio::net::TcpListener;

/// WebSocket pub/sub comparison peer (tokio + tokio-tungstenite), speaking the
/// JSON subset of Centrifugo's client protocol that the ringcast load generator uses.
#[derive(Parser, Debug)]
#[command(name = "peer-tokio-ws", version)]
struct Args {
    /// TCP port to listen on (all interfaces).
    #[arg(long, default_value_t = 8100)]
    port: u16,
    /// Tokio worker threads (default: one per CPU).
    #[arg(long)]
    threads: Option<usize>,
    /// Seconds between server `{}` pings on /connection/websocket; 0 disables them.
    #[arg(long, default_value_t = 25)]
    ping_interval: u64,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.threads {
        runtime.worker_threads(threads.max(1));
    }
    let runtime = runtime.enable_all().build()?;
    let config = Config {
        ping_interval: Duration::from_secs(args.ping_interval),
    };
    runtime.block_on(async {
        let listener = TcpListener::bind(("0.0.0.0", args.port)).await?;
        tracing::info!("peer-tokio-ws listening on {}", listener.local_addr()?);
        tokio::select! {
            result = serve(listener, config) => result?,
            signal = shutdown_signal() => {
                signal?;
                tracing::info!("shutting down");
            }
        }
        anyhow::Ok(())
    })?;
    // Connection tasks are dropped with the runtime; don't wait on slow sockets.
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM.
async fn shutdown_signal() -> std::io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result,
        _ = term.recv() => Ok(()),
    }
}
