use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use clap::Parser;
use ringcast_peer_http_backend::{serve, Stats};
use tokio::net::TcpListener;

/// Fast HTTP backend for ringcast's ws2api and proxy benchmarks: GET and
/// DELETE answer `ok`, POST …/connect a connect-proxy result, any other POST
/// its own body. Prints the bound address on stdout, and the request counts
/// when stopped (SIGTERM, SIGINT).
#[derive(Parser, Debug)]
#[command(name = "peer-http-backend", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    address: IpAddr,
    /// TCP port (0: any free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Threads: 1 is a current-thread tokio runtime, more a multi-thread one.
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()?
    };
    let stats = Arc::new(Stats::default());
    runtime.block_on(async {
        let listener = TcpListener::bind(SocketAddr::new(args.address, args.port)).await?;
        println!("{}", listener.local_addr()?);
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = serve(listener, stats.clone()) => r?,
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        println!("{}", stats.line());
        anyhow::Ok(())
    })?;
    runtime.shutdown_background();
    Ok(())
}
