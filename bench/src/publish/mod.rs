//! Publisher kinds for `fanout`, `publish` and `storm`: how a publication reaches the server and
//! how its acknowledgement comes back. The fanout scenario owns the
//! schedule (rate or max-in-flight), sequence numbers and accounting; a kind
//! only moves bytes. Adding one = one module here + one arm per method.

pub mod client;
pub mod http;
pub mod tcp;

use serde::Serialize;

use crate::net::Target;
use crate::scenario::Plan;
use crate::worker::Hand;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum PublisherKind {
    /// Client-protocol `publish` commands over WebSocket (needs a server
    /// that allows client publishing, e.g. `ringcast serve --insecure`).
    Client,
    /// Server API: `POST <api-url>/publish` with `X-API-Key`, keep-alive,
    /// pipelined (Centrifugo v5 HTTP API).
    Http,
    /// ringcast's TCP publisher protocol (docs/publisher-protocol.md):
    /// length-framed, authenticated with the API key, acks in order.
    Tcp,
}

impl PublisherKind {
    pub fn name(self) -> &'static str {
        match self {
            PublisherKind::Client => "client",
            PublisherKind::Http => "http",
            PublisherKind::Tcp => "tcp",
        }
    }
}

/// Where and how publishers connect.
#[derive(Debug, Clone, Serialize)]
pub struct PublishConfig {
    pub kind: PublisherKind,
    /// HTTP: the API base URL; TCP: `tcp://host:port`; client: none.
    pub endpoint: Option<String>,
    #[serde(skip)]
    pub target: Option<Target>,
    #[serde(skip)]
    pub api_key: Option<String>,
}

impl PublishConfig {
    pub fn client() -> PublishConfig {
        PublishConfig {
            kind: PublisherKind::Client,
            endpoint: None,
            target: None,
            api_key: None,
        }
    }

    pub fn new(
        kind: PublisherKind,
        api_url: &str,
        tcp_addr: &str,
        api_key: Option<String>,
    ) -> anyhow::Result<PublishConfig> {
        let endpoint = match kind {
            PublisherKind::Client => return Ok(PublishConfig::client()),
            PublisherKind::Http => api_url.trim_end_matches('/').to_string(),
            PublisherKind::Tcp if tcp_addr.contains("://") => tcp_addr.to_string(),
            PublisherKind::Tcp => format!("tcp://{tcp_addr}"),
        };
        let scheme = if kind == PublisherKind::Http {
            "http"
        } else {
            "tcp"
        };
        Ok(PublishConfig {
            kind,
            target: Some(Target::parse_scheme(&endpoint, scheme)?),
            endpoint: Some(endpoint),
            api_key,
        })
    }

    fn target(&self) -> &Target {
        self.target
            .as_ref()
            .expect("endpoint for http/tcp publishers")
    }
}

/// The server's answer to publication `id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    pub id: u64,
    pub ok: bool,
}

pub enum Publisher {
    Client(client::ClientPublisher),
    Http(http::HttpPublisher),
    Tcp(tcp::TcpPublisher),
}

impl Publisher {
    /// Connects publisher connection `index` (counted as a connection).
    pub async fn open(
        cfg: &PublishConfig,
        h: &mut Hand,
        index: usize,
        plan: &Plan,
    ) -> Option<Publisher> {
        match cfg.kind {
            PublisherKind::Client => client::ClientPublisher::open(h, index, plan)
                .await
                .map(Publisher::Client),
            PublisherKind::Http => http::HttpPublisher::open(h, index, cfg.target(), cfg)
                .await
                .map(Publisher::Http),
            PublisherKind::Tcp => tcp::TcpPublisher::open(h, index, cfg.target(), cfg)
                .await
                .map(Publisher::Tcp),
        }
    }

    /// Queues a publication of `data` (a JSON object) to `channel`; returns
    /// the id its acknowledgement will carry.
    pub fn queue(&mut self, channel: &str, data: &[u8]) -> u64 {
        match self {
            Publisher::Client(p) => p.queue(channel, data),
            Publisher::Http(p) => p.queue(channel, data),
            Publisher::Tcp(p) => p.queue(channel, data),
        }
    }

    pub async fn flush(&mut self) -> anyhow::Result<()> {
        match self {
            Publisher::Client(p) => p.flush().await,
            Publisher::Http(p) => p.flush().await,
            Publisher::Tcp(p) => p.flush().await,
        }
    }

    /// Waits for input and appends the acknowledgements it holds (possibly
    /// none: a server ping, say). Cancellation-safe: the only await is the
    /// read; anything to answer is queued for the caller's next `flush`.
    pub async fn read_acks(&mut self, acks: &mut Vec<Ack>) -> anyhow::Result<()> {
        match self {
            Publisher::Client(p) => p.read_acks(acks).await,
            Publisher::Http(p) => p.read_acks(acks).await,
            Publisher::Tcp(p) => p.read_acks(acks).await,
        }
    }

    pub async fn close(self) {
        match self {
            Publisher::Client(p) => p.close().await,
            Publisher::Http(p) => p.close().await,
            Publisher::Tcp(p) => p.close().await,
        }
    }
}

/// A plain TCP stream with an outgoing batch and a read buffer: what the
/// HTTP and TCP publishers share.
pub struct Stream {
    pub stream: tokio::net::TcpStream,
    pub wbuf: Vec<u8>,
    pub rbuf: bytes::BytesMut,
}

impl Stream {
    /// Connects to `target`, from `src` when the target is on loopback.
    pub async fn connect(target: &Target, src: Option<std::net::IpAddr>) -> anyhow::Result<Stream> {
        let src = src.filter(|_| target.is_loopback_v4());
        let stream = crate::net::connect(target.addr, src)
            .await
            .map_err(|e| anyhow::anyhow!("tcp connect {}: {e}", target.addr))?;
        Ok(Stream {
            stream,
            wbuf: Vec::with_capacity(4096),
            rbuf: bytes::BytesMut::new(),
        })
    }

    pub async fn flush(&mut self) -> anyhow::Result<()> {
        use tokio::io::AsyncWriteExt;
        if !self.wbuf.is_empty() {
            self.stream.write_all(&self.wbuf).await?;
            self.wbuf.clear();
        }
        Ok(())
    }

    /// Waits for readability and reads what is there; EOF is an error.
    pub async fn read(&mut self) -> anyhow::Result<()> {
        loop {
            self.stream.readable().await?;
            if self.rbuf.capacity() - self.rbuf.len() < 8192 {
                self.rbuf.reserve(64 << 10);
            }
            match self.stream.try_read_buf(&mut self.rbuf) {
                Ok(0) => anyhow::bail!("server closed the publisher connection"),
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    pub async fn close(mut self) {
        use tokio::io::AsyncWriteExt;
        let _ = self.stream.shutdown().await;
    }
}
