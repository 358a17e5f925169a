//! `peer-tokio-ws`: the WebSocket pub/sub server a typical Rust developer would
//! write with tokio + tokio-tungstenite + serde_json. A fair baseline for the
//! ringcast benchmarks; see README.md.

pub mod conn;
pub mod hub;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

pub use hub::Hub;

/// Server settings shared by every connection.
#[derive(Debug, Clone)]
pub struct Config {
    /// How often the server sends a `{}` ping on `/connection/websocket`.
    pub ping_interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            ping_interval: Duration::from_secs(25),
        }
    }
}

/// Accepts connections forever, one task per connection.
pub async fn serve(listener: TcpListener, config: Config) -> std::io::Result<()> {
    let hub = Arc::new(Hub::default());
    let config = Arc::new(config);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // EMFILE and friends: back off briefly instead of spinning.
                tracing::warn!("accept failed: {err}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (hub, config) = (hub.clone(), config.clone());
        tokio::spawn(async move {
            if let Err(err) = conn::handle(stream, hub, config).await {
                tracing::debug!("connection {peer} ended: {err}");
            }
        });
    }
}
