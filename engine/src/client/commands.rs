//! Client commands, one by one: who may do what (namespaces, tokens,
//! `--insecure`), and where each goes (answered here, or sent to the channel's
//! owner shard and answered from there).

use std::borrow::Cow;
use std::collections::HashMap;

use serde_json::value::RawValue;
use std::rc::Rc;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};

use super::session::{user_arc, ClientId, Identity, PendingConnect, Session, SubState};
use super::{disconnect, reply_empty, reply_error, sep, ClientService};
use crate::auth::{unix_now, Rejection, ServerSub};
use crate::broker::{Done, HistoryQuery, SubscribeReq};
use crate::config::ChannelOptions;
use crate::hub::mesh::{ChannelName, Member};
use crate::protocol::codes::{self, ClientError};
use crate::protocol::command::{
    Command, ConnectRequest, ConnectSub, HistoryRequest, RefreshRequest, SubRefreshRequest,
    SubscribeRequest,
};
use crate::protocol::json::{put_str, put_u64};
use crate::protocol::push;
use crate::protocol::tags::FilterNode;

impl ClientService {
    pub(super) fn handle(
        &self,
        s: &Rc<Session>,
        id: u32,
        cmd: Command<'_>,
        frame: &Bytes,
        out: &mut BytesMut,
    ) {
        if matches!(cmd, Command::Pong) {
            return s.awaiting_pong.set(false);
        }
        if !self.within_rate(s) {
            return disconnect(s, codes::TOO_MANY_REQUESTS_DISCONNECT);
        }
        let connected = s.is_connected();
        match cmd {
            Command::Pong => {}
            Command::Connect(_) if connected || self.proxy_connecting(s) => {
                disconnect(s, codes::BAD_REQUEST_DISCONNECT)
            }
            Command::Connect(req) => self.connect(s, id, req, out),
            _ if !connected => disconnect(s, codes::BAD_REQUEST_DISCONNECT),
            Command::Subscribe(req) => self.subscribe(s, id, req, out),
            Command::Unsubscribe(req) => {
                self.proxy_forget(s, &req.channel);
                if s.unsubscribe(&req.channel) == Some(SubState::Active) {
                    self.hub.subs.borrow_mut().remove(&req.channel, &s.conn);
                    let client = s.client_id().expect("connected");
                    self.hub.unsubscribe_at_owner((*req.channel).into(), client);
                }
                reply_empty(out, id, "unsubscribe");
            }
            Command::Publish(req) => {
                let opts = match self.channel(&req.channel) {
                    Ok(o) => o,
                    Err(e) => return reply_error(out, id, e),
                };
                // The raw JSON is a slice of the received frame: no copy.
                let data = frame.slice_ref(req.data.get().as_bytes());
                if let Some(p) = self.proxy_named(&opts.publish_proxy) {
                    // The application's backend decides, and may change it.
                    return self.proxy_publish(s, id, &req.channel, (req.data, data), p);
                }
                if !(self.insecure() || opts.allow_publish_for_client) {
                    return reply_error(out, id, codes::PERMISSION_DENIED);
                }
                let info = s.with_identity(Identity::info);
                let channel: ChannelName = (*req.channel).into();
                let reply = self.hub.reply_to(s.conn.id, id);
                self.hub.publish(channel, data, info, Done::Client(reply));
            }
            Command::Presence(req) => self.presence(s, id, &req.channel, false, out),
            Command::PresenceStats(req) => self.presence(s, id, &req.channel, true, out),
            Command::History(req) => self.history(s, id, req, out),
            Command::Ping => reply_empty(out, id, "ping"),
            // No send handler is configured: asynchronous messages are dropped.
            Command::Send(_) => {}
            Command::Rpc(req) => self.rpc(s, id, req, out),
            Command::Refresh(req) => self.refresh(s, id, req, out),
            Command::SubRefresh(req) => self.sub_refresh(s, id, req, out),
        }
    }

    pub(super) fn insecure(&self) -> bool {
        self.opts.client().insecure
    }

    /// Commands per second per connection (`client.commands_per_second`).
    fn within_rate(&self, s: &Session) -> bool {
        let limit = self.opts.client().commands_per_second;
        if limit == 0 {
            return true;
        }
        // The low 32 bits of the second are enough to tell it changed.
        let now = unix_now() as u32;
        let (used, second) = s.rate().get();
        let used = if second == now { used + 1 } else { 1 };
        s.rate().set((used, now));
        used <= limit
    }

    /// A channel's options after the name checks: 107 for a bad name, 102 for
    /// an unknown namespace.
    pub(super) fn channel(&self, channel: &str) -> Result<&ChannelOptions, ClientError> {
        if channel.is_empty() || channel.len() > self.opts.client().max_channel_length {
            return Err(codes::BAD_REQUEST);
        }
        self.opts
            .config
            .channel_options(channel)
            .ok_or(codes::UNKNOWN_CHANNEL)
    }

    pub(super) fn connect(
        &self,
        s: &Rc<Session>,
        id: u32,
        req: ConnectRequest<'_>,
        out: &mut BytesMut,
    ) {
        let now = unix_now();
        let token = req.token.as_deref().filter(|t| !t.is_empty());
        if token.is_none() {
            // No token: the application's backend decides, if it is asked.
            if let Some(p) = self.proxy_named(&self.opts.client().connect_proxy) {
                return self.proxy_connect(s, id, &req, p);
            }
        }
        let creds = match (token, &self.opts.verifier) {
            (Some(t), Some(v)) => match v.verify_connect(t, now) {
                Ok(c) => match c.ttl(now) {
                    Ok(_) => Creds {
                        user: c.user,
                        conn_info: c.info,
                        expires_at: c.expires_at,
                        channels: c.channels,
                        subs: c.subs,
                        data: None,
                    },
                    Err(e) => return reply_error(out, id, e),
                },
                Err(e) => return self.reject(s, id, e.on_connect(), out),
            },
            _ if self.insecure() => Creds::default(),
            _ => return disconnect(s, codes::INVALID_TOKEN),
        };
        self.admit(s, id, creds, &positions(&req.subs), out);
    }

    /// Connects the session as `creds` say (a verified token, the connect
    /// proxy's answer, or `--insecure`).
    pub(super) fn admit(
        &self,
        s: &Rc<Session>,
        id: u32,
        creds: Creds,
        positions: &Positions,
        out: &mut BytesMut,
    ) {
        let now = unix_now();
        let Creds {
            user,
            conn_info,
            expires_at,
            channels,
            subs,
            data,
        } = creds;
        let client = s
            .proxy()
            .and_then(|mut p| p.client.take())
            .map_or_else(|| s.own_client_id(), |c| ClientId::from_text(&c));
        let user = user_arc(&user);
        if !self.opts.users.admit(&user) {
            return disconnect(s, codes::CONNECTION_LIMIT);
        }
        s.set_identity(Identity {
            client: client.clone(),
            user,
            conn_info: conn_info.map(String::into_boxed_str),
        });
        s.set_expires_at(expires_at.unwrap_or(0));
        let mut head = BytesMut::with_capacity(160);
        let framing = s.conn.framing();
        if framing.is_unidirectional() {
            // Unidirectional: the connect push, `{"connect":{...}}`.
            head.put_slice(b"{\"connect\":{");
        } else {
            push::open_result(&mut head, id, "connect");
        }
        head.put_slice(b"\"client\":");
        client.with_str(|c| put_str(&mut head, c));
        head.put_slice(b",\"version\":");
        put_str(&mut head, crate::VERSION);
        // With a refresh proxy the server refreshes: the client is not told.
        if self.refresh_proxy().is_none() {
            self.put_expiry(&mut head, expires_at, now);
        }
        head.put_slice(b",\"ping\":");
        put_u64(&mut head, self.opts.ping_interval.as_secs().max(1));
        if !framing.is_unidirectional() {
            head.put_slice(b",\"pong\":true");
        }
        if let Some(session) = s.transport_session() {
            head.put_slice(b",\"session\":");
            put_str(&mut head, session);
            if framing.is_emulation() {
                head.put_slice(b",\"node\":");
                put_str(&mut head, &self.opts.node_uid);
            }
        }
        if let Some(d) = &data {
            head.put_slice(b",\"data\":");
            head.put_slice(d.get().as_bytes());
        }
        let user = s.user().expect("connected");
        let server = self.server_subscriptions(s, &user, channels, &subs, positions);
        if server.is_empty() {
            sep(out);
            out.put_slice(&head);
            push::close_result(out);
            return;
        }
        // The reply reports the server-side subscriptions (`subs`), so it
        // waits for their broker answers; their publications may arrive
        // first and wait behind it (the connection is held until then).
        s.conn.hold();
        s.set_pending_connect(Box::new(PendingConnect {
            id,
            head,
            subs: BytesMut::new(),
            waiting: server.len(),
            failed: false,
        }));
        for (ch, sub) in server {
            self.send_subscribe(s, id, self.hub.channel_name(&ch), sub);
        }
    }

    /// The channels the server subscribes a connecting client to, each once:
    /// the token's (`subs` or `channels`), `client.server_subscriptions`, and
    /// the user's personal channel; within `max_subscriptions`, in declared
    /// namespaces. A position the client sent for one (connect `subs`) is
    /// recovered from.
    fn server_subscriptions(
        &self,
        s: &Session,
        user: &str,
        token_channels: Vec<String>,
        token_subs: &[ServerSub],
        positions: &Positions,
    ) -> Vec<(String, PendingSub)> {
        let cfg = self.opts.client();
        let mut names = token_channels;
        names.extend(cfg.server_subscriptions.iter().cloned());
        if cfg.subscribe_to_user_personal_channel && !user.is_empty() {
            names.push(personal_channel(&cfg.user_personal_channel_namespace, user));
        }
        let mut out: Vec<(String, PendingSub)> = Vec::new();
        for ch in names {
            if out.iter().any(|(c, _)| *c == ch) {
                continue;
            }
            let fresh = s.sub_state(&ch).is_none_or(|st| st == SubState::Cancelled);
            let room = s.sub_count() + out.len() < cfg.max_subscriptions;
            let Ok(opts) = self.channel(&ch) else {
                continue;
            };
            if !(fresh && room) {
                continue;
            }
            let history = opts.history_enabled();
            let asked = positions.get(ch.as_str()).filter(|p| p.0 && history);
            let sub = PendingSub {
                chan_info: token_subs
                    .iter()
                    .find(|x| x.channel == ch)
                    .and_then(|x| x.info.clone()),
                recoverable: history && (opts.force_recovery || asked.is_some()),
                recover: asked.map(|p| (p.1, p.2.clone())),
                expires_at: 0,
                reject_unrecovered: false,
                track: None,
                delta: false,
                filter: None,
            };
            out.push((ch, sub));
        }
        out
    }

    fn put_expiry(&self, out: &mut BytesMut, expires_at: Option<u64>, now: u64) {
        if let Some(at) = expires_at.filter(|&a| a > 0) {
            out.put_slice(b",\"expires\":true,\"ttl\":");
            put_u64(out, at.saturating_sub(now));
        }
    }

    pub(super) fn reject(&self, s: &Session, id: u32, r: Rejection, out: &mut BytesMut) {
        match r {
            Rejection::Error(e) => reply_error(out, id, e),
            Rejection::Disconnect(d) => disconnect(s, d),
        }
    }

    fn refresh(&self, s: &Rc<Session>, id: u32, req: RefreshRequest<'_>, out: &mut BytesMut) {
        let Some(v) = &self.opts.verifier else {
            return reply_error(out, id, codes::NOT_AVAILABLE);
        };
        let now = unix_now();
        let user = s.user().expect("connected");
        match v.verify_refresh(&req.token, &user, now) {
            Ok(c) => match c.ttl(now) {
                Ok(_) => {
                    s.set_expires_at(c.expires_at.unwrap_or(0));
                    sep(out);
                    push::open_result(out, id, "refresh");
                    out.put_slice(b"\"client\":");
                    put_str(out, &s.client_id().expect("connected"));
                    out.put_slice(b",\"version\":");
                    put_str(out, crate::VERSION);
                    self.put_expiry(out, c.expires_at, now);
                    push::close_result(out);
                }
                Err(_) => disconnect(s, codes::CONNECTION_EXPIRED),
            },
            Err(e) => self.reject(s, id, e.on_refresh(), out),
        }
    }

    fn subscribe(&self, s: &Rc<Session>, id: u32, req: SubscribeRequest<'_>, out: &mut BytesMut) {
        let channel = &*req.channel;
        let opts = match self.channel(channel) {
            Ok(o) => o,
            Err(e) => return reply_error(out, id, e),
        };
        let Some(delta) = delta_wanted(&req, opts) else {
            // An encoding no SDK sends (Centrifugo: bad request).
            return disconnect(s, codes::BAD_REQUEST_DISCONNECT);
        };
        let filter = match tags_filter(&req, opts, delta) {
            Ok(f) => f,
            Err(e) => return reply_error(out, id, e),
        };
        if s.sub_state(channel)
            .is_some_and(|st| st != SubState::Cancelled)
        {
            return reply_error(out, id, codes::ALREADY_SUBSCRIBED);
        }
        if s.sub_count() >= self.opts.client().max_subscriptions {
            return reply_error(out, id, codes::LIMIT_EXCEEDED);
        }
        let (user, client) = s
            .with_identity(|i| (i.user.clone(), i.client.to_arc()))
            .expect("connected");
        let token = req.token.as_deref().filter(|t| !t.is_empty());
        let mut chan_info = None;
        let mut expires_at = 0;
        let now = unix_now();
        match (token, &self.opts.verifier) {
            (Some(t), Some(v)) => match v.verify_subscription(t, &user, &client, channel, now) {
                Ok(c) => {
                    if let Err(e) = c.ttl(now) {
                        return reply_error(out, id, e);
                    }
                    chan_info = c.info;
                    expires_at = c.expires_at.unwrap_or(0);
                }
                Err(e) => return self.reject(s, id, e.on_subscribe(), out),
            },
            (Some(_), None) if !self.insecure() => {
                return reply_error(out, id, codes::PERMISSION_DENIED)
            }
            _ if user_limited_allows(opts, channel, &user) => {}
            _ => {
                if let Some(p) = self.proxy_named(&opts.subscribe_proxy) {
                    // The application's backend decides.
                    return self.proxy_subscribe(s, id, &req, opts, p);
                }
                if !(self.insecure() || opts.allow_subscribe_for_client) {
                    return reply_error(out, id, codes::PERMISSION_DENIED);
                }
            }
        }
        let history = opts.history_enabled();
        let recoverable = history && (req.recoverable || req.recover || opts.force_recovery);
        // Recover from where the client was (offset 0: it had received nothing).
        let recover = (history && req.recover)
            .then(|| (req.offset, Arc::from(req.epoch.as_deref().unwrap_or(""))));
        let sub = PendingSub {
            chan_info,
            recoverable,
            recover,
            expires_at,
            reject_unrecovered: req.flag & FLAG_REJECT_UNRECOVERED != 0,
            track: None,
            delta,
            filter,
        };
        self.send_subscribe(s, id, self.hub.channel_name(channel), sub);
    }

    /// Records a pending subscription and asks the channel's owner for it.
    pub(super) fn send_subscribe(
        &self,
        s: &Rc<Session>,
        id: u32,
        channel: ChannelName,
        sub: PendingSub,
    ) {
        s.add_pending(channel.clone());
        self.ask_owner(s, id, channel, sub);
    }

    /// Asks the owner for a subscription already recorded as pending.
    pub(super) fn ask_owner(
        &self,
        s: &Rc<Session>,
        id: u32,
        channel: ChannelName,
        sub: PendingSub,
    ) {
        let PendingSub {
            chan_info,
            recoverable,
            recover,
            expires_at,
            reject_unrecovered,
            track,
            delta,
            filter,
        } = sub;
        // Presence keeps who subscribed, where the channel wants it.
        let tracked = track.unwrap_or_else(|| {
            self.opts
                .config
                .channel_options(&channel)
                .is_some_and(|o| o.presence || o.join_leave)
        });
        // Built only where presence keeps it (ClientInfo with channel info
        // is an allocation per subscribe).
        let member = tracked.then(|| {
            s.with_identity(|i| Member {
                client: i.client.to_arc(),
                user: i.user.clone(),
                info: i.info_with(chan_info.as_deref()),
            })
            .expect("connected")
        });
        let reply = self.hub.reply_to(s.conn.id, id);
        self.hub.subscribe(SubscribeReq {
            channel,
            member,
            reply,
            recoverable,
            recover,
            expires_at,
            reject_unrecovered,
            delta,
            filter,
        });
    }

    fn sub_refresh(
        &self,
        s: &Rc<Session>,
        id: u32,
        req: SubRefreshRequest<'_>,
        out: &mut BytesMut,
    ) {
        let Some(v) = &self.opts.verifier else {
            return reply_error(out, id, codes::NOT_AVAILABLE);
        };
        if s.sub_state(&req.channel) != Some(SubState::Active) {
            return reply_error(out, id, codes::BAD_REQUEST);
        }
        let now = unix_now();
        let (user, client) = s
            .with_identity(|i| (i.user.clone(), i.client.to_arc()))
            .expect("connected");
        match v.verify_subscription(&req.token, &user, &client, &req.channel, now) {
            Ok(c) => match c.ttl(now) {
                Ok(_) => {
                    sep(out);
                    push::open_result(out, id, "sub_refresh");
                    if let Some(at) = c.expires_at.filter(|&a| a > 0) {
                        out.put_slice(b"\"expires\":true,\"ttl\":");
                        put_u64(out, at.saturating_sub(now));
                    }
                    push::close_result(out);
                }
                Err(_) => disconnect(s, codes::SUBSCRIPTION_EXPIRED),
            },
            Err(e) => self.reject(s, id, e.on_sub_refresh(), out),
        }
    }

    fn presence(&self, s: &Rc<Session>, id: u32, channel: &str, stats: bool, out: &mut BytesMut) {
        let opts = match self.channel(channel) {
            Ok(o) => o,
            Err(e) => return reply_error(out, id, e),
        };
        if !opts.presence {
            return reply_error(out, id, codes::NOT_AVAILABLE);
        }
        let subscribed = s.sub_state(channel) == Some(SubState::Active);
        if !(self.insecure() || opts.allow_presence_for_client || subscribed) {
            return reply_error(out, id, codes::PERMISSION_DENIED);
        }
        let reply = self.hub.reply_to(s.conn.id, id);
        let method = if stats { "presence_stats" } else { "presence" };
        self.hub.presence(
            channel.into(),
            stats,
            Box::new(move |h, r| {
                let mut line = BytesMut::with_capacity(128);
                match r {
                    Ok(fields) => {
                        push::open_result(&mut line, reply.id, method);
                        line.put_slice(&fields);
                        push::close_result(&mut line);
                    }
                    Err(e) => push::error(&mut line, reply.id, e),
                }
                h.reply_line(reply, &line);
            }),
        );
    }

    fn history(&self, s: &Rc<Session>, id: u32, req: HistoryRequest<'_>, out: &mut BytesMut) {
        let channel = &*req.channel;
        let opts = match self.channel(channel) {
            Ok(o) => o,
            Err(e) => return reply_error(out, id, e),
        };
        if !opts.history_enabled() {
            return reply_error(out, id, codes::NOT_AVAILABLE);
        }
        let subscribed = s.sub_state(channel) == Some(SubState::Active);
        if !(self.insecure() || opts.allow_history_for_client || subscribed) {
            return reply_error(out, id, codes::PERMISSION_DENIED);
        }
        let reply = self.hub.reply_to(s.conn.id, id);
        let since = req.since.map(|p| (p.offset, p.epoch.into_owned()));
        let (limit, reverse) = (req.limit as i64, req.reverse);
        let q = HistoryQuery {
            channel: channel.into(),
            since,
            limit,
            reverse,
        };
        self.hub.history(
            q,
            Box::new(move |h, r| {
                let mut line = BytesMut::with_capacity(128);
                match r {
                    Ok((pubs, epoch, offset)) => {
                        push::open_result(&mut line, reply.id, "history");
                        line.put_slice(b"\"publications\":");
                        push::put_array(&mut line, &pubs);
                        line.put_u8(b',');
                        push::stream_position(&mut line, &epoch, offset);
                        push::close_result(&mut line);
                    }
                    Err(e) => push::error(&mut line, reply.id, e),
                }
                h.reply_line(reply, &line);
            }),
        );
    }
}

/// What a subscribe carries to the channel's owner besides the member.
#[derive(Default)]
pub(super) struct PendingSub {
    pub chan_info: Option<String>,
    pub recoverable: bool,
    pub recover: Option<(u64, Arc<str>)>,
    pub expires_at: u64,
    pub reject_unrecovered: bool,
    /// Whether presence keeps this subscriber (the subscribe proxy's
    /// override); `None`: as the channel says.
    pub track: Option<bool>,
    /// The subscriber takes fossil deltas.
    pub delta: bool,
    /// The subscriber's tags filter.
    pub filter: Option<Arc<FilterNode>>,
}

/// A subscribe's tags filter (`tf`), when it has one: 107 where the
/// namespace does not allow filters (Centrifugo's answer), for a filter
/// that does not parse or breaks Centrifugo's rules, and with deltas (the
/// SDKs refuse that pair too).
pub(super) fn tags_filter(
    req: &SubscribeRequest<'_>,
    opts: &ChannelOptions,
    delta: bool,
) -> Result<Option<Arc<FilterNode>>, ClientError> {
    let Some(raw) = req.tf.filter(|f| f.get() != "null") else {
        return Ok(None);
    };
    if !opts.allow_tags_filter || delta {
        return Err(codes::BAD_REQUEST);
    }
    let f: FilterNode = serde_json::from_str(raw.get()).map_err(|_| codes::BAD_REQUEST)?;
    f.validate().map_err(|_| codes::BAD_REQUEST)?;
    Ok(Some(Arc::new(f)))
}

/// Whether a subscribe gets fossil deltas: asked for and allowed by the
/// namespace (asked for where it is not: a plain subscription, as in
/// Centrifugo). None: an unknown encoding.
pub(super) fn delta_wanted(req: &SubscribeRequest<'_>, opts: &ChannelOptions) -> Option<bool> {
    match req.delta.as_deref() {
        None | Some("") => Some(false),
        Some("fossil") => Some(opts.fossil_allowed()),
        Some(_) => None,
    }
}

/// Who a connecting client is, from wherever that was decided.
#[derive(Default)]
pub(super) struct Creds {
    pub user: String,
    /// `info`, raw JSON.
    pub conn_info: Option<String>,
    pub expires_at: Option<u64>,
    /// Server-side subscriptions, by name and with their info.
    pub channels: Vec<String>,
    pub subs: Vec<ServerSub>,
    /// The connect reply's `data`.
    pub data: Option<Box<RawValue>>,
}

/// Positions a reconnecting client sent for its server-side subscriptions:
/// channel → (recover, offset, epoch).
pub(super) type Positions = HashMap<String, (bool, u64, Arc<str>)>;

/// A connect request's `subs`, owned (they outlive the request when the
/// connect waits on a proxy).
pub(super) fn positions(subs: &HashMap<Cow<'_, str>, ConnectSub<'_>>) -> Positions {
    subs.iter()
        .map(|(ch, p)| {
            let epoch: Arc<str> = Arc::from(p.epoch.as_deref().unwrap_or(""));
            (ch.to_string(), (p.recover, p.offset, epoch))
        })
        .collect()
}

/// Subscribe `flag` bit: an unrecoverable position is error 112
/// (centrifuge-js sets it for subscriptions with `getState`).
pub(super) const FLAG_REJECT_UNRECOVERED: i64 = 2;

/// A user's personal channel: `ns:#user`, or `#user` at the top level.
fn personal_channel(namespace: &str, user: &str) -> String {
    if namespace.is_empty() {
        format!("#{user}")
    } else {
        format!("{namespace}:#{user}")
    }
}

/// `name#u1,u2`: a channel only the listed users may subscribe to.
fn user_limited_allows(opts: &ChannelOptions, channel: &str, user: &str) -> bool {
    if !opts.allow_user_limited_channels || user.is_empty() {
        return false;
    }
    match channel.rsplit_once('#') {
        Some((_, users)) => users.split(',').any(|u| u == user),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_limited_channels() {
        let opts = ChannelOptions {
            allow_user_limited_channels: true,
            ..ChannelOptions::default()
        };
        assert!(user_limited_allows(&opts, "dialog#42,43", "43"));
        assert!(!user_limited_allows(&opts, "dialog#42,43", "44"));
        assert!(!user_limited_allows(&opts, "dialog", "42"));
        assert!(!user_limited_allows(
            &ChannelOptions::default(),
            "dialog#42",
            "42"
        ));
    }
}
