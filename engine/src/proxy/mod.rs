//! Calls to application backends over HTTP (docs/proxy.md):
//!
//! - `backend.rs`: the backend thread (pooled keep-alive clients, limits,
//!   timeouts); a shard hands it a request and awaits the answer.
//! - `outcome.rs`: a request's method and what became of it;
//!   `plain.rs`: the thread's pooled HTTP/1.1 client for `http://`.
//! - `wire.rs`: Centrifugo's proxy protocol, the JSON bodies (no I/O, fuzzed).
//! - `ws2api.rs`: `ringcast ws2api`, every WebSocket event an HTTP request.
//!
//! This file maps `[proxy.NAME]` sections to endpoints and says which client
//! headers each one forwards.

pub mod backend;
mod outcome;
mod plain;
pub mod wire;
pub mod ws2api;

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use self::backend::{Backends, Endpoint, Method, Outcome, Request};
use crate::config::Config;
use crate::hub::call::Call;
use crate::hub::mesh::Mesh;
use crate::hub::Hub;

/// The configured proxies of a node.
pub struct Proxies {
    pub backends: Arc<Backends>,
    /// Per endpoint: the client headers it forwards (lowercase).
    forward: Vec<Vec<String>>,
    /// Per endpoint: whether it gets the connection's `meta`.
    pub meta: Vec<bool>,
    /// Every header any proxy forwards (lowercase): what a connection keeps
    /// from its HTTP request.
    pub kept_headers: Arc<[String]>,
}

/// A client's HTTP request headers kept for the proxies (name lowercase).
pub type Headers = [(Box<str>, Box<str>)];

impl Proxies {
    /// The endpoints of `[proxy.*]`; `None` when there are none.
    pub fn endpoints(cfg: &Config) -> Vec<Endpoint> {
        cfg.proxy
            .iter()
            .map(|(name, p)| Endpoint {
                name: name.clone(),
                url: p.endpoint.clone(),
                timeout: Duration::from_secs_f64(p.timeout),
                static_headers: p
                    .static_http_headers
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                max_in_flight: p.max_in_flight,
                max_queue: p.max_queue,
            })
            .collect()
    }

    /// Starts the backend thread for `[proxy.*]` (mesh source `src`);
    /// `None` without proxies.
    pub fn start(cfg: &Config, mesh: Arc<Mesh>, src: usize) -> anyhow::Result<Option<Arc<Self>>> {
        if cfg.proxy.is_empty() {
            return Ok(None);
        }
        for (name, p) in &cfg.proxy {
            reqwest::Url::parse(&p.endpoint)
                .map_err(|e| anyhow::anyhow!("proxy.{name}.endpoint: {e}"))?;
        }
        let backends = Backends::start(Self::endpoints(cfg), mesh, src)?;
        let forward: Vec<Vec<String>> = cfg
            .proxy
            .values()
            .map(|p| {
                p.http_headers
                    .iter()
                    .map(|h| h.to_ascii_lowercase())
                    .collect()
            })
            .collect();
        let mut kept: Vec<String> = forward.iter().flatten().cloned().collect();
        kept.sort();
        kept.dedup();
        Ok(Some(Arc::new(Proxies {
            backends,
            forward,
            meta: cfg
                .proxy
                .values()
                .map(|p| p.include_connection_meta)
                .collect(),
            kept_headers: kept.into(),
        })))
    }

    /// The endpoint named `name` ("" : none).
    pub fn find(&self, name: &str) -> Option<usize> {
        if name.is_empty() {
            return None;
        }
        self.backends.find(name)
    }

    /// POSTs a JSON body to endpoint `i`, with the headers it forwards.
    pub fn post(&self, hub: &Rc<Hub>, i: usize, headers: &Headers, body: Vec<u8>) -> Call<Outcome> {
        let forward = &self.forward[i];
        let headers = headers
            .iter()
            .filter(|(k, _)| forward.iter().any(|f| **f == **k))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.backends.call(
            hub,
            Request {
                endpoint: i,
                method: Method::Post,
                suffix: None,
                headers,
                content_type: Some("application/json"),
                body: Bytes::from(body),
            },
        )
    }

    /// A 200 answer of endpoint `i` that could not be used.
    pub fn count_malformed(&self, i: usize) {
        self.backends.metrics[i]
            .malformed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn name(&self, i: usize) -> &str {
        &self.backends.endpoints[i].name
    }
}

/// The headers of `pairs` named in `kept` (lowercase), for a connection to
/// keep; `None` when none match.
pub fn keep_headers<'a>(
    kept: &[String],
    pairs: impl Iterator<Item = (&'a str, &'a str)>,
) -> Option<Box<Headers>> {
    if kept.is_empty() {
        return None;
    }
    let out: Vec<(Box<str>, Box<str>)> = pairs
        .filter_map(|(k, v)| {
            let k = k.to_ascii_lowercase();
            kept.contains(&k).then(|| (k.into(), v.into()))
        })
        .collect();
    (!out.is_empty()).then(|| out.into_boxed_slice())
}
