//! Configuration: built-in defaults, overridden by a TOML file (`--config`),
//! overridden by `RINGCAST_*` environment variables, overridden by flags.
//! Every option and its default is listed in docs/configuration.md; unknown
//! keys and bad values are errors that name the key.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::auth::AuthConfig;
use crate::shard::driver::DriverChoice;

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerSection,
    pub client: ClientSection,
    pub api: ApiSection,
    pub broker: BrokerSection,
    pub transports: TransportsSection,
    #[serde(serialize_with = "redacted_auth")]
    pub auth: AuthConfig,
    /// Options of channels outside any namespace.
    pub channel: ChannelOptions,
    /// `[namespace.NAME]`: options of channels named `NAME:...`.
    pub namespace: BTreeMap<String, ChannelOptions>,
    /// `[proxy.NAME]`: application backends the client protocol calls
    /// (docs/proxy.md).
    pub proxy: BTreeMap<String, ProxyEndpoint>,
    /// Client `rpc` calls: which proxy answers them.
    pub rpc: RpcSection,
}

/// One application backend endpoint (`[proxy.NAME]`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyEndpoint {
    /// `http://` or `https://` URL every call of this proxy is POSTed to.
    #[serde(serialize_with = "redacted_url")]
    pub endpoint: String,
    /// Seconds a call may take, waiting for a free connection included.
    pub timeout: f64,
    /// Headers of the client's HTTP request (the WebSocket upgrade, or the
    /// HTTP transport's request) forwarded to the backend, by name.
    pub http_headers: Vec<String>,
    /// Headers sent with every call.
    #[serde(serialize_with = "redacted_map")]
    pub static_http_headers: BTreeMap<String, String>,
    /// Calls in flight at once (each on its own keep-alive connection).
    pub max_in_flight: usize,
    /// Calls waiting for a connection beyond which a call fails at once
    /// (counted as `overloaded`).
    pub max_queue: usize,
    /// Send the connection's `meta` (from the connect or refresh proxy)
    /// with this proxy's calls.
    pub include_connection_meta: bool,
}

impl Default for ProxyEndpoint {
    fn default() -> Self {
        ProxyEndpoint {
            endpoint: String::new(),
            timeout: 1.0,
            http_headers: Vec::new(),
            static_http_headers: BTreeMap::new(),
            max_in_flight: 64,
            max_queue: 10_000,
            include_connection_meta: false,
        }
    }
}

/// `[rpc]`: client `rpc` calls go to `proxy`; a method named `NS:method`
/// goes to `[rpc.namespace.NS]`'s proxy instead.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RpcSection {
    pub proxy: String,
    pub namespace: BTreeMap<String, RpcNamespace>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RpcNamespace {
    pub proxy: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    pub address: IpAddr,
    /// Client WebSocket port (`/connection/websocket`).
    pub port: u16,
    /// Shards (threads, one per core); 0: one per online CPU.
    pub shards: usize,
    pub pin: bool,
    pub driver: DriverChoice,
    /// Cap on client connections; 0: the fd limit minus a reserve.
    pub max_connections: usize,
    /// Seconds a client has to complete the upgrade request.
    pub handshake_timeout: f64,
    /// Seconds a graceful shutdown waits for clients to be told and flushed.
    pub shutdown_timeout: f64,
    /// Largest WebSocket message from a client, bytes (larger: close 1009).
    pub max_message: usize,
    /// Longest a shard holds back its next flush pass after one that sent
    /// thousands of connections a frame or two each, seconds (0: never).
    pub flush_hold_max: f64,
    /// Handshake workers the node spawns at start and keeps, split over its
    /// shards: a connect burst up to this many in flight leaves no freed
    /// worker among the clients' memory (more are spawned beyond it, and
    /// exit after it).
    pub handshake_workers: usize,
    /// SCHED_FIFO priority of the shard threads, 1–99 (0: the normal
    /// policy). See docs/operations.md, "When the tail is someone else's:
    /// real-time shards".
    pub realtime_priority: u8,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            address: IpAddr::from([0, 0, 0, 0]),
            port: 8000,
            shards: 0,
            pin: true,
            driver: DriverChoice::Auto,
            max_connections: 0,
            handshake_timeout: 10.0,
            shutdown_timeout: 10.0,
            max_message: 64 * 1024,
            flush_hold_max: 0.1,
            handshake_workers: 256,
            realtime_priority: 0,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientSection {
    /// Accept connections without a token and allow every client action.
    pub insecure: bool,
    /// Seconds between server pings.
    pub ping_interval: u64,
    /// Seconds a client has to answer a ping (capped at half the interval).
    pub pong_timeout: f64,
    /// Outbound bytes queued for one client before it is cut with 3008.
    pub max_queue: usize,
    pub max_channel_length: usize,
    pub max_subscriptions: usize,
    /// Connections one user may hold on this node; 0: unlimited.
    pub max_connections_per_user: usize,
    /// Connections one source address may hold on this node; 0: unlimited.
    pub max_connections_per_ip: usize,
    /// Commands one connection may send per second; 0: unlimited.
    pub commands_per_second: u32,
    /// New WebSocket upgrades accepted per second per shard (a reconnect
    /// storm beyond it gets 503 + Retry-After); 0: unlimited.
    pub connect_rate: u32,
    /// Channels every client is subscribed to by the server at connect
    /// (server-side subscriptions, reported in the connect reply).
    pub server_subscriptions: Vec<String>,
    /// Subscribe every identified user to their personal channel
    /// (`<user_personal_channel_namespace>:#<user>`, or `#<user>`).
    pub subscribe_to_user_personal_channel: bool,
    /// The namespace of personal channels ("" : the top level).
    pub user_personal_channel_namespace: String,
    /// `[proxy.NAME]` asked at connect when the client has no token.
    pub connect_proxy: String,
    /// `[proxy.NAME]` asked when a connection set up by the connect proxy
    /// expires (the server refreshes it; the client is not asked).
    pub refresh_proxy: String,
}

impl Default for ClientSection {
    fn default() -> Self {
        ClientSection {
            insecure: false,
            ping_interval: 25,
            pong_timeout: 8.0,
            max_queue: 1 << 20,
            max_channel_length: 255,
            max_subscriptions: 128,
            max_connections_per_user: 0,
            max_connections_per_ip: 0,
            commands_per_second: 0,
            connect_rate: 0,
            server_subscriptions: Vec::new(),
            subscribe_to_user_personal_channel: false,
            user_personal_channel_namespace: String::new(),
            connect_proxy: String::new(),
            refresh_proxy: String::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSection {
    /// Internal port: server API, /metrics, /health.
    pub port: u16,
    /// Required in `X-API-Key` or `Authorization: apikey KEY` (and by TCP
    /// publishers).
    #[serde(serialize_with = "redacted_opt")]
    pub key: Option<String>,
    /// Serve the API without a key (trusted networks only; the internal
    /// port only).
    pub insecure: bool,
    /// Also serve the server API (`POST /api`, `/api/<method>`) on the
    /// client port, as Centrifugo's default layout does; always with the key.
    pub on_client_port: bool,
    /// TCP publisher port (docs/publisher-protocol.md).
    pub publisher_port: u16,
    /// Largest TCP publisher frame, bytes.
    pub publisher_max_frame: usize,
}

impl Default for ApiSection {
    fn default() -> Self {
        ApiSection {
            port: 9000,
            key: None,
            insecure: false,
            on_client_port: false,
            publisher_port: 9001,
            publisher_max_frame: 1 << 20,
        }
    }
}

/// Which transports the client port serves (docs/transports.md).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransportsSection {
    /// `/connection/websocket`: the client protocol over WebSocket.
    pub websocket: bool,
    /// `/connection/http_stream` and `/emulation`: bidirectional fallback
    /// over a streamed HTTP response.
    pub http_stream: bool,
    /// `/connection/sse` and `/emulation`: bidirectional fallback over
    /// server-sent events.
    pub sse: bool,
    /// `/connection/uni_websocket`: pushes only, over WebSocket.
    pub uni_websocket: bool,
    /// Negotiate permessage-deflate on `/connection/websocket` when the
    /// client offers it (messages of 128 bytes and more compressed). Off by
    /// default, as in Centrifugo: clients pay for it too (a storm of
    /// 10,000 Node `ws` clients with it on did not resubscribe in time).
    pub websocket_compression: bool,
    /// `/connection/uni_sse`: pushes only, as server-sent events.
    pub uni_sse: bool,
    /// `/connection/uni_http_stream`: pushes only, newline-delimited.
    pub uni_http_stream: bool,
    /// Largest request body of the HTTP transports and `/emulation`, bytes
    /// (larger: 413).
    pub max_request_body: usize,
    /// Origins whose pages may use the client port from a browser (the
    /// WebSocket upgrade, and CORS for the HTTP transports): exact
    /// `scheme://host[:port]` strings, `*` for any. Empty: any origin (no
    /// credentials ride on cookies; tokens are in the requests). A request
    /// without an `Origin` header (not a browser) is always allowed.
    pub allowed_origins: Vec<String>,
}

impl Default for TransportsSection {
    fn default() -> Self {
        TransportsSection {
            websocket: true,
            http_stream: false,
            sse: false,
            uni_websocket: false,
            websocket_compression: false,
            uni_sse: false,
            uni_http_stream: false,
            max_request_body: 64 * 1024,
            allowed_origins: Vec::new(),
        }
    }
}

/// Which broker carries publications between shards and nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BrokerKind {
    /// One node: channel owners on the shards (no dependencies).
    #[default]
    Memory,
    /// Many nodes through Redis (PUB/SUB, streams, presence).
    Redis,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerSection {
    #[serde(rename = "type")]
    pub kind: BrokerKind,
    /// Redis servers, `redis://[:password@]host:port[/db]`; channels are
    /// spread over several by a consistent hash of the name. With Sentinel,
    /// the first (if any) gives the password and db.
    #[serde(serialize_with = "redacted_urls")]
    pub addresses: Vec<String>,
    /// Prefix of every Redis key and PUB/SUB channel.
    pub prefix: String,
    /// Sentinels (`host:port`) to ask for the master's address.
    pub sentinel_addresses: Vec<String>,
    /// Seed nodes of a Redis Cluster (`redis://host:port`), instead of
    /// `addresses`: channels go to the master of their slot (hash tag on the
    /// channel name), publications over sharded PUB/SUB.
    #[serde(serialize_with = "redacted_urls")]
    pub cluster_addresses: Vec<String>,
    /// The master's name at the Sentinels.
    pub sentinel_master: String,
    /// This node's name in `info` (default: hostname:port); unique per node.
    pub node_name: String,
    /// Seconds a Redis command may take before it counts as failed.
    pub command_timeout: f64,
    /// Seconds a presence entry lives without a refresh from its node.
    pub presence_ttl: f64,
    /// Seconds a stream's epoch and offset are kept after its last
    /// publication (0: for ever).
    pub history_meta_ttl: u64,
}

impl Default for BrokerSection {
    fn default() -> Self {
        BrokerSection {
            kind: BrokerKind::Memory,
            addresses: Vec::new(),
            prefix: "ringcast".into(),
            sentinel_addresses: Vec::new(),
            cluster_addresses: Vec::new(),
            sentinel_master: String::new(),
            node_name: String::new(),
            command_timeout: 2.0,
            presence_ttl: 30.0,
            history_meta_ttl: 30 * 24 * 3600,
        }
    }
}

/// A Redis URL without its password (for logs, `config check`, metrics).
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***{}", &url[..s + 3], &url[at..]),
        _ => url.to_string(),
    }
}

fn redacted_urls<S: serde::Serializer>(v: &[String], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(v.len()))?;
    for u in v {
        seq.serialize_element(&redact(u))?;
    }
    seq.end()
}

/// What clients may do in a channel, and what the channel keeps.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChannelOptions {
    /// Keep presence (presence, presence_stats).
    pub presence: bool,
    /// Push join/leave to subscribers.
    pub join_leave: bool,
    /// Publications kept for history and recovery; 0: none.
    pub history_size: usize,
    /// Seconds publications stay in history (and a stream's position is kept
    /// after its last subscriber leaves); 0: no history.
    pub history_ttl: f64,
    /// Recover missed publications on resubscribe even if the client did
    /// not ask for it.
    pub force_recovery: bool,
    /// Clients may subscribe without a subscription token.
    pub allow_subscribe_for_client: bool,
    /// Clients may publish.
    pub allow_publish_for_client: bool,
    /// Clients may ask for presence.
    pub allow_presence_for_client: bool,
    /// Clients may ask for history.
    pub allow_history_for_client: bool,
    /// `chan#u1,u2` channels: only the listed users may subscribe.
    pub allow_user_limited_channels: bool,
    /// `[proxy.NAME]` asked when a client subscribes without a token.
    pub subscribe_proxy: String,
    /// `[proxy.NAME]` asked before a client's publication is published.
    pub publish_proxy: String,
    /// `[proxy.NAME]` asked when a subscription from the subscribe proxy
    /// expires.
    pub sub_refresh_proxy: String,
    /// Delta encodings subscribers may ask for (`delta` in subscribe):
    /// `["fossil"]` or none.
    pub allowed_delta_types: Vec<String>,
    /// Publications go to delta subscribers as fossil deltas against the
    /// one before (when that makes them smaller). Needs
    /// `allowed_delta_types`.
    pub delta_publish: bool,
    /// Subscribers may narrow a subscription with a tags filter (`tf`).
    pub allow_tags_filter: bool,
}

impl Default for ChannelOptions {
    fn default() -> Self {
        ChannelOptions {
            presence: false,
            join_leave: false,
            history_size: 0,
            history_ttl: 0.0,
            force_recovery: false,
            allow_subscribe_for_client: false,
            allow_publish_for_client: false,
            allow_presence_for_client: false,
            allow_history_for_client: false,
            allow_user_limited_channels: false,
            subscribe_proxy: String::new(),
            publish_proxy: String::new(),
            sub_refresh_proxy: String::new(),
            allowed_delta_types: Vec::new(),
            delta_publish: false,
            allow_tags_filter: false,
        }
    }
}

impl ChannelOptions {
    pub fn history_enabled(&self) -> bool {
        self.history_size > 0 && self.history_ttl > 0.0
    }

    /// Subscribers may ask for fossil deltas.
    pub fn fossil_allowed(&self) -> bool {
        self.allowed_delta_types.iter().any(|t| t == "fossil")
    }

    /// Publications are sent as deltas to the subscribers that asked.
    pub fn delta_on(&self) -> bool {
        self.delta_publish && self.fossil_allowed()
    }
}

fn redacted_url<S: serde::Serializer>(v: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&redact(v))
}

fn redacted_map<S: serde::Serializer>(
    v: &BTreeMap<String, String>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(v.len()))?;
    for k in v.keys() {
        m.serialize_entry(k, "<redacted>")?;
    }
    m.end()
}

fn redacted_opt<S: serde::Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(x) if !x.is_empty() => s.serialize_some("<redacted>"),
        _ => s.serialize_none(),
    }
}

fn redacted_auth<S: serde::Serializer>(a: &AuthConfig, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(None)?;
    let secret = |v: &Option<String>| v.as_ref().filter(|x| !x.is_empty()).map(|_| "<redacted>");
    let keys = [
        ("token_hmac_secret_key", secret(&a.token_hmac_secret_key)),
        ("token_rsa_public_key", secret(&a.token_rsa_public_key)),
        ("token_ecdsa_public_key", secret(&a.token_ecdsa_public_key)),
        (
            "subscription_token_hmac_secret_key",
            secret(&a.subscription_token_hmac_secret_key),
        ),
        (
            "subscription_token_rsa_public_key",
            secret(&a.subscription_token_rsa_public_key),
        ),
        (
            "subscription_token_ecdsa_public_key",
            secret(&a.subscription_token_ecdsa_public_key),
        ),
    ];
    for (k, v) in keys {
        if let Some(v) = v {
            m.serialize_entry(k, v)?;
        }
    }
    for (k, v) in [
        ("token_audience", &a.token_audience),
        ("token_issuer", &a.token_issuer),
        (
            "subscription_token_audience",
            &a.subscription_token_audience,
        ),
        ("subscription_token_issuer", &a.subscription_token_issuer),
    ] {
        if let Some(v) = v {
            m.serialize_entry(k, v)?;
        }
    }
    m.serialize_entry("token_leeway_secs", &a.token_leeway_secs)?;
    m.serialize_entry("require_sub", &a.require_sub)?;
    m.end()
}

/// Finite and above zero (NaN and infinity are not).
fn positive(x: f64) -> bool {
    x.is_finite() && x > 0.0
}

fn non_negative(x: f64) -> bool {
    x.is_finite() && x >= 0.0
}

/// A configuration error, naming the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Parses TOML text (unknown keys and wrong types name their key).
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads a file without validating it: the environment and flags are
    /// applied on top first (a file may leave to them what it needs, e.g.
    /// `[broker] type = "redis"` with the addresses in RINGCAST_REDIS_ADDRESS);
    /// callers validate the result.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| ConfigError(format!("{}: {e}", path.display())))
    }

    /// Values that parse but make no sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |key: &str, why: &str| Err(ConfigError(format!("{key}: {why}")));
        if self.server.shards > 1024 {
            return err("server.shards", "at most 1024");
        }
        if !positive(self.server.handshake_timeout) {
            return err("server.handshake_timeout", "must be > 0");
        }
        if !non_negative(self.server.shutdown_timeout) {
            return err("server.shutdown_timeout", "must be >= 0");
        }
        if !non_negative(self.server.flush_hold_max) || self.server.flush_hold_max > 10.0 {
            return err("server.flush_hold_max", "must be between 0 and 10 seconds");
        }
        if self.server.handshake_workers > 65_536 {
            return err("server.handshake_workers", "at most 65536");
        }
        if self.server.realtime_priority > 99 {
            return err(
                "server.realtime_priority",
                "must be 0 (the normal policy) or a SCHED_FIFO priority 1..=99",
            );
        }
        if self.server.max_message < 16 {
            return err("server.max_message", "must be at least 16 bytes");
        }
        if self.client.ping_interval == 0 {
            return err("client.ping_interval", "must be at least 1 second");
        }
        if !positive(self.client.pong_timeout) {
            return err("client.pong_timeout", "must be > 0");
        }
        if self.client.max_channel_length == 0 || self.client.max_channel_length > 65535 {
            return err("client.max_channel_length", "must be 1..=65535");
        }
        if self.client.max_subscriptions == 0 {
            return err("client.max_subscriptions", "must be at least 1");
        }
        if self.api.on_client_port && self.api.key.as_deref().unwrap_or("").is_empty() {
            return err(
                "api.on_client_port",
                "the API on the client port needs api.key (it is never served there without one)",
            );
        }
        if self.api.publisher_max_frame < 16 {
            return err("api.publisher_max_frame", "must be at least 16 bytes");
        }
        let b = &self.broker;
        if b.kind == BrokerKind::Redis {
            if b.addresses.is_empty()
                && b.sentinel_addresses.is_empty()
                && b.cluster_addresses.is_empty()
            {
                return err(
                    "broker.addresses",
                    "the redis broker needs at least one address (or sentinel_addresses, or cluster_addresses)",
                );
            }
            let single = !b.addresses.is_empty() || !b.sentinel_addresses.is_empty();
            if !b.cluster_addresses.is_empty() && single {
                return err(
                    "broker.cluster_addresses",
                    "a Redis Cluster is used alone: leave addresses and sentinel_addresses empty",
                );
            }
            for (key, a) in b.addresses.iter().map(|a| ("broker.addresses", a)).chain(
                b.cluster_addresses
                    .iter()
                    .map(|a| ("broker.cluster_addresses", a)),
            ) {
                if !a.starts_with("redis://") || a.len() < 9 {
                    let why = if a.starts_with("rediss://") {
                        "TLS (rediss://) is not supported yet: use redis:// on a trusted network or through a TLS tunnel"
                    } else {
                        "is not a redis:// URL"
                    };
                    return err(key, &format!("{:?} {why}", redact(a)));
                }
            }
            if !b.sentinel_addresses.is_empty() && b.sentinel_master.is_empty() {
                return err("broker.sentinel_master", "needed with sentinel_addresses");
            }
            if b.prefix.is_empty() || b.prefix.contains(['{', '}']) {
                return err("broker.prefix", "must be non-empty, without braces");
            }
            if !positive(b.command_timeout) {
                return err("broker.command_timeout", "must be > 0");
            }
            if b.presence_ttl.is_nan() || b.presence_ttl < 1.0 {
                return err("broker.presence_ttl", "must be at least 1 second");
            }
        }
        let check_channel = |key: &str, o: &ChannelOptions| -> Result<(), ConfigError> {
            if o.history_size > 1_000_000 {
                return Err(ConfigError(format!("{key}.history_size: at most 1000000")));
            }
            if !non_negative(o.history_ttl) {
                return Err(ConfigError(format!("{key}.history_ttl: must be >= 0")));
            }
            if (o.history_size > 0) != (o.history_ttl > 0.0) {
                return Err(ConfigError(format!(
                    "{key}: history_size and history_ttl must both be set (or neither)"
                )));
            }
            if o.force_recovery && !o.history_enabled() {
                return Err(ConfigError(format!("{key}.force_recovery: needs history")));
            }
            if let Some(t) = o.allowed_delta_types.iter().find(|t| *t != "fossil") {
                return Err(ConfigError(format!(
                    "{key}.allowed_delta_types: unknown type {t:?} (\"fossil\" is the one there is)"
                )));
            }
            if o.delta_publish && !o.fossil_allowed() {
                return Err(ConfigError(format!(
                    "{key}.delta_publish: needs allowed_delta_types = [\"fossil\"]"
                )));
            }
            Ok(())
        };
        check_channel("channel", &self.channel)?;
        for (name, o) in &self.namespace {
            let ok = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
            if !ok {
                return err(
                    &format!("namespace.{name}"),
                    "names are letters, digits, '_', '-', '.'",
                );
            }
            check_channel(&format!("namespace.{name}"), o)?;
        }
        self.validate_proxies()
    }

    /// `[proxy.*]` and every reference to a proxy name.
    fn validate_proxies(&self) -> Result<(), ConfigError> {
        let err = |key: &str, why: &str| Err(ConfigError(format!("{key}: {why}")));
        for (name, p) in &self.proxy {
            let key = format!("proxy.{name}");
            let scheme = p.endpoint.split_once("://").map(|(s, _)| s);
            if !matches!(scheme, Some("http" | "https")) || p.endpoint.len() < 10 {
                return err(
                    &format!("{key}.endpoint"),
                    "must be an http:// or https:// URL",
                );
            }
            if !positive(p.timeout) || p.timeout > 300.0 {
                return err(
                    &format!("{key}.timeout"),
                    "must be > 0 and at most 300 seconds",
                );
            }
            if p.max_in_flight == 0 {
                return err(&format!("{key}.max_in_flight"), "must be at least 1");
            }
            let token = |h: &str| {
                !h.is_empty()
                    && h.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
            };
            for h in &p.http_headers {
                if !token(h) {
                    return err(
                        &format!("{key}.http_headers"),
                        &format!("{h:?} is not a header name"),
                    );
                }
            }
            for (h, v) in &p.static_http_headers {
                if !token(h) || v.bytes().any(|b| b == b'\r' || b == b'\n') {
                    return err(
                        &format!("{key}.static_http_headers"),
                        &format!("{h:?} is not a header name, or its value has a line break"),
                    );
                }
            }
        }
        let named = |key: &str, name: &str| -> Result<(), ConfigError> {
            if name.is_empty() || self.proxy.contains_key(name) {
                Ok(())
            } else {
                Err(ConfigError(format!("{key}: no [proxy.{name}]")))
            }
        };
        named("client.connect_proxy", &self.client.connect_proxy)?;
        named("client.refresh_proxy", &self.client.refresh_proxy)?;
        named("rpc.proxy", &self.rpc.proxy)?;
        for (ns, r) in &self.rpc.namespace {
            if r.proxy.is_empty() {
                return err(
                    &format!("rpc.namespace.{ns}.proxy"),
                    "names the [proxy.NAME] that answers these methods",
                );
            }
            named(&format!("rpc.namespace.{ns}.proxy"), &r.proxy)?;
        }
        let channels = std::iter::once(("channel".to_string(), &self.channel)).chain(
            self.namespace
                .iter()
                .map(|(n, o)| (format!("namespace.{n}"), o)),
        );
        for (key, o) in channels {
            named(&format!("{key}.subscribe_proxy"), &o.subscribe_proxy)?;
            named(&format!("{key}.publish_proxy"), &o.publish_proxy)?;
            named(&format!("{key}.sub_refresh_proxy"), &o.sub_refresh_proxy)?;
        }
        Ok(())
    }

    /// The effective configuration as TOML, secrets redacted.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }

    /// The options of `channel` (by its namespace prefix), or `None` when
    /// the channel names an unknown namespace.
    pub fn channel_options(&self, channel: &str) -> Option<&ChannelOptions> {
        match channel.split_once(':') {
            Some((ns, _)) => self.namespace.get(ns),
            None => Some(&self.channel),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realtime_priority_is_a_fifo_priority_or_off() {
        let e = Config::from_toml("[server]\nrealtime_priority = 100\n").unwrap_err();
        assert!(e.0.contains("server.realtime_priority"), "{e}");
        let c = Config::from_toml("[server]\nrealtime_priority = 99\n").unwrap();
        assert_eq!(c.server.realtime_priority, 99);
        let e = Config::from_toml("[server]\nrealtime_priority = -1\n").unwrap_err();
        assert!(e.0.contains("realtime_priority"), "{e}");
    }

    #[test]
    fn defaults_round_trip_through_toml() {
        let cfg = Config::default();
        let text = cfg.to_toml();
        let back = Config::from_toml(&text).unwrap();
        assert_eq!(back.server.port, 8000);
        assert_eq!(back.api.port, 9000);
        assert_eq!(back.channel, ChannelOptions::default());
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let e = Config::from_toml("[server]\nprot = 1\n").unwrap_err();
        assert!(e.0.contains("prot"), "{e}");
        let e = Config::from_toml("[client]\nping_interval = \"soon\"\n").unwrap_err();
        assert!(e.0.contains("ping_interval"), "{e}");
        let e = Config::from_toml("[server]\nhandshake_workers = 100000\n").unwrap_err();
        assert!(e.0.contains("server.handshake_workers"), "{e}");
        let cfg = Config::from_toml("[server]\nhandshake_workers = 0\n").unwrap();
        assert_eq!(cfg.server.handshake_workers, 0);
        assert_eq!(Config::default().server.handshake_workers, 256);
        let e = Config::from_toml("[client]\nping_interval = 0\n").unwrap_err();
        assert!(e.0.contains("client.ping_interval"), "{e}");
        let e = Config::from_toml("[namespace.chat]\nhistory_size = 10\n").unwrap_err();
        assert!(e.0.contains("namespace.chat"), "{e}");
        let e = Config::from_toml("[namespace.\"bad name\"]\n").unwrap_err();
        assert!(e.0.contains("namespace.bad name"), "{e}");
        let e = Config::from_toml("[auth]\ntoken_hmac_secret = \"x\"\n").unwrap_err();
        assert!(e.0.contains("token_hmac_secret"), "{e}");
    }

    #[test]
    fn namespaces_resolve_by_prefix() {
        let cfg = Config::from_toml(
            "[channel]\npresence = true\n[namespace.chat]\nhistory_size = 100\nhistory_ttl = 60\n",
        )
        .unwrap();
        assert!(cfg.channel_options("news").unwrap().presence);
        assert_eq!(cfg.channel_options("chat:room").unwrap().history_size, 100);
        assert!(cfg.channel_options("nope:x").is_none());
    }

    #[test]
    fn secrets_are_redacted() {
        let cfg = Config::from_toml(
            "[api]\nkey = \"hunter2\"\n[auth]\ntoken_hmac_secret_key = \"s3cret\"\n",
        )
        .unwrap();
        let text = cfg.to_toml();
        assert!(
            !text.contains("hunter2") && !text.contains("s3cret"),
            "{text}"
        );
        assert!(text.contains("<redacted>"));
    }
}
