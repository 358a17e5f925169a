//! Client commands an application backend decides (docs/proxy.md), with
//! Centrifugo's proxy semantics: connect (without a token), refresh (by the
//! server, at expiry), subscribe (without a token), publish, sub_refresh (by
//! the server) and rpc, each through a `[proxy.NAME]` endpoint.
//!
//! A call never blocks the shard: the command's answer leaves when the
//! backend's arrives, from a task on the shard. A backend that is down,
//! slow, answers non-200 or nonsense gets the client error 100 (temporary:
//! the SDKs retry connect and subscribe); refreshes are retried a minute
//! later.

use std::rc::Rc;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::value::RawValue;

use super::commands::{positions, Creds, PendingSub, Positions, FLAG_REJECT_UNRECOVERED};
use super::session::{Identity, Session, SubState};
use super::{disconnect, reply_error, sep, ClientService};
use crate::auth::{unix_now, ServerSub};
use crate::config::ChannelOptions;
use crate::hub::mesh::ChannelName;
use crate::protocol::codes;
use crate::protocol::command::{ConnectRequest, RpcRequest, SubscribeRequest};
use crate::protocol::push;
use crate::proxy::backend::Outcome;
use crate::proxy::wire::{self, Answer, Base};
use crate::proxy::{Headers, Proxies};

/// A failed refresh (connection or subscription) is tried again after this
/// many seconds, as in Centrifugo.
const RETRY_REFRESH: u64 = 60;

/// Frames a connect waiting on its proxy may have waiting behind it.
const MAX_QUEUED: usize = 32;

/// An answer read: `Err(())` when the call failed or the answer is not one
/// (logged at debug).
type Read<T> = Result<Answer<T>, ()>;

impl ClientService {
    pub(super) fn proxies(&self) -> Option<&Arc<Proxies>> {
        self.opts.proxies.as_ref()
    }

    /// The endpoint of `[proxy.NAME]` ("" : none).
    pub(super) fn proxy_named(&self, name: &str) -> Option<usize> {
        self.proxies()?.find(name)
    }

    pub(super) fn refresh_proxy(&self) -> Option<usize> {
        self.proxy_named(&self.opts.client().refresh_proxy)
    }

    /// Keeps command lines until the connect's proxy answers; false when
    /// too many wait.
    pub(super) fn stash(&self, s: &Session, lines: Bytes) -> bool {
        let Some(mut st) = s.proxy() else {
            return false;
        };
        if st.queued.len() >= MAX_QUEUED {
            return false;
        }
        st.queued.push(lines);
        true
    }

    /// Whether a connect proxy call is in flight for `s`.
    pub(super) fn proxy_connecting(&self, s: &Session) -> bool {
        s.proxy_ref().is_some_and(|p| p.connecting)
    }

    /// POSTs `body` to endpoint `p` with what `s` forwards.
    fn post(&self, s: &Session, p: usize, body: Vec<u8>) -> crate::hub::call::Call<Outcome> {
        let proxies = self.proxies().expect("proxies").clone();
        let st = s.proxy_ref();
        let headers: &Headers = st
            .as_ref()
            .and_then(|x| x.headers.as_deref())
            .unwrap_or(&[]);
        proxies.post(&self.hub, p, headers, body)
    }

    /// The connection's `meta`, if endpoint `p` includes it.
    fn meta(&self, s: &Session, p: usize) -> Option<Box<RawValue>> {
        if !self.proxies()?.meta[p] {
            return None;
        }
        s.proxy_ref()?.meta.clone()
    }

    /// Reads endpoint `p`'s answer: a 200 with a proxy-protocol body.
    fn read<T>(&self, p: usize, what: &str, o: &Outcome) -> Read<T>
    where
        T: for<'de> serde::Deserialize<'de>,
    {
        let name = || {
            self.proxies()
                .map(|x| x.name(p).to_string())
                .unwrap_or_default()
        };
        let Some(body) = o.ok_body() else {
            let why = match o {
                Outcome::Response { status, .. } => format!("status {status}"),
                Outcome::Unreachable(e) => e.clone(),
                other => other.label().to_string(),
            };
            tracing::debug!(proxy = %name(), what, %why, "proxy call failed");
            return Err(());
        };
        wire::parse_answer::<T>(body).map_err(|e| {
            self.count_malformed(p);
            tracing::warn!(proxy = %name(), what, error = %e.0, "proxy answer unusable");
        })
    }

    /// A command's result from endpoint `p`'s answer; `None` when the
    /// command is answered already: the backend's error (or 100, when it
    /// could not answer) is in `out`, or its disconnect closed the
    /// connection.
    fn result_of<T>(
        &self,
        s: &Session,
        id: u32,
        p: usize,
        what: &str,
        o: &Outcome,
        out: &mut BytesMut,
    ) -> Option<Option<T>>
    where
        T: for<'de> serde::Deserialize<'de>,
    {
        match self.read::<T>(p, what, o) {
            Ok(Answer::Result(r)) => Some(r),
            Ok(Answer::Disconnect { code, reason }) => {
                s.conn.close_with(code, reason);
                None
            }
            Ok(Answer::Error {
                code,
                message,
                temporary,
            }) => {
                error_reply(out, id, code, &message, temporary);
                None
            }
            Err(()) => {
                reply_error(out, id, codes::INTERNAL);
                None
            }
        }
    }

    /// The JSON payload of an answer (`data` or `b64data`); `Err` (error 100
    /// in `out`, counted) when it is not JSON.
    fn payload_of(
        &self,
        p: usize,
        (raw, b64, what): (&Option<Box<RawValue>>, &Option<String>, &str),
        id: u32,
        out: &mut BytesMut,
    ) -> Result<Option<Box<RawValue>>, ()> {
        wire::payload(raw, b64, what).map_err(|e| {
            self.count_malformed(p);
            tracing::warn!(proxy = %self.proxies().map(|x| x.name(p)).unwrap_or(""), error = %e.0, "proxy answer unusable");
            reply_error(out, id, codes::INTERNAL);
        })
    }

    fn count_malformed(&self, p: usize) {
        if let Some(x) = self.proxies() {
            x.count_malformed(p);
        }
    }

    // ---- connect ----

    pub(super) fn proxy_connect(
        &self,
        s: &Rc<Session>,
        id: u32,
        req: &ConnectRequest<'_>,
        p: usize,
    ) {
        // The connection's own id (kept as one byte if the backend keeps
        // it and the client stays anonymous).
        let client = s.own_client_id().to_arc();
        let channels: Vec<&str> = req.subs.keys().map(|k| &**k).collect();
        let body = wire::body(&wire::ConnectRequest {
            base: base(s, &client),
            name: req.name.as_deref().unwrap_or(""),
            version: req.version.as_deref().unwrap_or(""),
            data: req.data,
            channels: &channels,
        });
        {
            let mut st = s.proxy_or_new();
            st.connecting = true;
            st.client = Some(client);
        }
        let positions = positions(&req.subs);
        let call = self.post(s, p, body);
        let (svc, s) = (self.clone(), s.clone());
        monoio::spawn(async move {
            let o = call.await;
            svc.proxy_connected(&s, id, p, &positions, o);
        });
    }

    fn proxy_connected(
        &self,
        s: &Rc<Session>,
        id: u32,
        p: usize,
        positions: &Positions,
        o: Outcome,
    ) {
        if let Some(mut st) = s.proxy() {
            st.connecting = false;
        }
        if s.conn.is_closing() {
            return;
        }
        let mut out = BytesMut::new();
        match self.result_of::<wire::ConnectResult>(s, id, p, "connect", &o, &mut out) {
            None => {}
            // No result: anonymous where that is allowed, else a bad request.
            Some(None) if self.insecure() => {
                self.admit(s, id, Creds::default(), positions, &mut out)
            }
            Some(None) => return disconnect(s, codes::BAD_REQUEST_DISCONNECT),
            Some(Some(r)) => match self.connect_creds(p, r) {
                Ok((creds, meta)) => {
                    if let Some(mut st) = s.proxy() {
                        st.meta = meta;
                    }
                    self.admit(s, id, creds, positions, &mut out)
                }
                Err(e) => reply_error(&mut out, id, e),
            },
        }
        self.send_connect_out(s, &out);
        // What came behind the connect runs now (a failed connect: the
        // client closes, nothing more is run for it).
        let queued = s
            .proxy()
            .map(|mut st| std::mem::take(&mut st.queued))
            .unwrap_or_default();
        for lines in queued {
            if !s.is_connected() || s.conn.is_closing() {
                break;
            }
            self.run_lines(s, lines, BytesMut::new());
        }
    }

    /// The credentials in a connect result, and its `meta`.
    fn connect_creds(
        &self,
        p: usize,
        r: wire::ConnectResult,
    ) -> Result<(Creds, Option<Box<RawValue>>), codes::ClientError> {
        let bad = |e: wire::Malformed| {
            self.count_malformed(p);
            tracing::warn!(error = %e.0, "connect proxy answer unusable");
            codes::INTERNAL
        };
        if r.expire_at > 0 && r.expire_at <= unix_now() {
            return Err(codes::EXPIRED);
        }
        let info = wire::payload(&r.info, &r.b64info, "info").map_err(bad)?;
        let data = wire::payload(&r.data, &r.b64data, "data").map_err(bad)?;
        let mut subs = Vec::with_capacity(r.subs.len());
        for (channel, o) in &r.subs {
            let info = wire::payload(&o.info, &o.b64info, "info").map_err(bad)?;
            subs.push(ServerSub {
                channel: channel.clone(),
                info: info.map(|i| i.get().to_string()),
                data: None,
            });
        }
        let mut channels = r.channels;
        channels.extend(r.subs.keys().cloned());
        // A channel in no namespace the config declares: the backend's
        // mistake, which retrying does not mend (102, as Centrifugo).
        if let Some(ch) = channels.iter().find(|c| self.channel(c).is_err()) {
            tracing::warn!(channel = %ch, "connect proxy named a channel of an unknown namespace");
            return Err(codes::UNKNOWN_CHANNEL);
        }
        let creds = Creds {
            user: r.user,
            conn_info: info.map(|i| i.get().to_string()),
            expires_at: (r.expire_at > 0).then_some(r.expire_at),
            channels,
            subs,
            data,
        };
        Ok((creds, r.meta))
    }

    /// Sends what a connect produced; on a unidirectional transport an
    /// error closes the connection with the disconnect it maps to.
    pub(super) fn send_connect_out(&self, s: &Session, out: &[u8]) {
        if s.conn.framing().is_unidirectional() {
            if let Some(code) = push::error_code(out) {
                return disconnect(s, super::uni_disconnect(code));
            }
        }
        if !out.is_empty() {
            s.conn.reply_text(out);
        }
    }

    // ---- refresh (by the server, at expiry) ----

    /// The connection's credentials ran out: ask the refresh proxy.
    pub(super) fn proxy_refresh(&self, s: &Rc<Session>, p: usize) {
        {
            let mut st = s.proxy_or_new();
            if st.refreshing {
                return;
            }
            st.refreshing = true;
        }
        let Some((client, user)) = s.with_identity(|i| (i.client.to_arc(), i.user.clone())) else {
            return;
        };
        let meta = self.meta(s, p);
        let body = wire::body(&wire::RefreshRequest {
            base: base(s, &client),
            user: &user,
            meta: meta.as_deref(),
        });
        let call = self.post(s, p, body);
        let (svc, s) = (self.clone(), s.clone());
        monoio::spawn(async move {
            let o = call.await;
            svc.proxy_refreshed(&s, p, o);
        });
    }

    fn proxy_refreshed(&self, s: &Rc<Session>, p: usize, o: Outcome) {
        if let Some(mut st) = s.proxy() {
            st.refreshing = false;
        }
        if s.conn.is_closing() {
            return;
        }
        let now = unix_now();
        let r = match self.read::<wire::RefreshResult>(p, "refresh", &o) {
            // The backend could not say: keep the connection, ask again later.
            Err(()) => return s.set_expires_at(now + RETRY_REFRESH),
            Ok(Answer::Result(Some(r))) if !r.expired && r.expire_at > now => r,
            // Expired, no result, an error or a disconnect: the connection
            // ends (3005); the client reconnects through the connect proxy.
            Ok(_) => return disconnect(s, codes::CONNECTION_EXPIRED),
        };
        s.set_expires_at(r.expire_at);
        match wire::payload(&r.info, &r.b64info, "info") {
            Ok(Some(info)) => {
                let updated = s.with_identity(|i| Identity {
                    client: i.client.clone(),
                    user: i.user.clone(),
                    conn_info: Some(info.get().into()),
                });
                if let Some(i) = updated {
                    s.set_identity(i);
                }
            }
            Ok(None) => {}
            Err(e) => {
                self.count_malformed(p);
                tracing::warn!(error = %e.0, "refresh proxy info unusable");
            }
        }
    }

    // ---- subscribe ----

    pub(super) fn proxy_subscribe(
        &self,
        s: &Rc<Session>,
        id: u32,
        req: &SubscribeRequest<'_>,
        opts: &ChannelOptions,
        p: usize,
    ) {
        let channel = self.hub.channel_name(&req.channel);
        let Some((client, user)) = s.with_identity(|i| (i.client.to_arc(), i.user.clone())) else {
            return;
        };
        // An unknown encoding was refused before the proxy was asked.
        let delta = super::commands::delta_wanted(req, opts).unwrap_or(false);
        // Likewise a filter that is not allowed or not valid.
        let filter = super::commands::tags_filter(req, opts, delta)
            .ok()
            .flatten();
        let meta = self.meta(s, p);
        let body = wire::body(&wire::SubscribeRequest {
            base: base(s, &client),
            user: &user,
            channel: &channel,
            token: "",
            data: req.data,
            meta: meta.as_deref(),
        });
        // Pending meanwhile: a second subscribe is "already subscribed",
        // an unsubscribe cancels it.
        s.add_pending(channel.clone());
        let history = opts.history_enabled();
        let asked = Asked {
            recoverable: history && (req.recoverable || req.recover),
            recover: (history && req.recover)
                .then(|| (req.offset, Arc::from(req.epoch.as_deref().unwrap_or("")))),
            reject_unrecovered: req.flag & FLAG_REJECT_UNRECOVERED != 0,
            delta,
            filter,
        };
        let call = self.post(s, p, body);
        let (svc, s) = (self.clone(), s.clone());
        monoio::spawn(async move {
            let o = call.await;
            svc.proxy_subscribed(&s, id, channel, p, asked, o);
        });
    }

    fn proxy_subscribed(
        &self,
        s: &Rc<Session>,
        id: u32,
        channel: ChannelName,
        p: usize,
        asked: Asked,
        o: Outcome,
    ) {
        if s.conn.is_closing() {
            return;
        }
        if s.sub_state(&channel) == Some(SubState::Cancelled) {
            // Unsubscribed while the backend thought: nothing to do.
            s.fail_pending(&channel);
            return;
        }
        let mut out = BytesMut::new();
        let Some(r) = self.result_of::<wire::SubscribeResult>(s, id, p, "subscribe", &o, &mut out)
        else {
            s.fail_pending(&channel);
            return self.send_out(s, &out);
        };
        let r = r.unwrap_or_default();
        let Some(opts) = self.opts.config.channel_options(&channel) else {
            s.fail_pending(&channel);
            reply_error(&mut out, id, codes::UNKNOWN_CHANNEL);
            return self.send_out(s, &out);
        };
        let now = unix_now();
        if r.expire_at > 0 && r.expire_at <= now {
            s.fail_pending(&channel);
            reply_error(&mut out, id, codes::EXPIRED);
            return self.send_out(s, &out);
        }
        let payloads = self
            .payload_of(p, (&r.info, &r.b64info, "info"), id, &mut out)
            .and_then(|i| {
                Ok((
                    i,
                    self.payload_of(p, (&r.data, &r.b64data, "data"), id, &mut out)?,
                ))
            });
        let Ok((info, data)) = payloads else {
            s.fail_pending(&channel);
            return self.send_out(s, &out);
        };
        let ov = &r.overrides;
        let history = opts.history_enabled();
        let force_recovery = ov.force_recovery.map_or(opts.force_recovery, |b| b.value);
        let presence = ov.presence.map_or(opts.presence, |b| b.value);
        let join_leave = ov.join_leave.map_or(opts.join_leave, |b| b.value);
        // The server refreshes a subscription that expires where a
        // sub_refresh proxy is set; else the client does, with a token.
        let server_refresh = self.proxy_named(&opts.sub_refresh_proxy).is_some();
        let mut expires_at = r.expire_at;
        if let Some(mut st) = s.proxy() {
            st.sub_expiry.retain(|(c, _, _)| *c != channel);
            if server_refresh && expires_at > 0 {
                st.sub_expiry.push((channel.clone(), expires_at, false));
                expires_at = 0;
            }
            if let Some(d) = data {
                st.sub_data.retain(|(c, _)| *c != channel);
                st.sub_data.push((channel.clone(), d));
            }
        }
        let sub = PendingSub {
            chan_info: info.map(|i| i.get().to_string()),
            recoverable: history && (asked.recoverable || force_recovery),
            recover: asked.recover,
            expires_at,
            reject_unrecovered: asked.reject_unrecovered,
            track: Some(presence || join_leave),
            delta: asked.delta,
            filter: asked.filter,
        };
        self.ask_owner(s, id, channel, sub);
    }

    fn send_out(&self, s: &Session, out: &[u8]) {
        if !out.is_empty() {
            s.conn.reply_text(out);
        }
    }

    // ---- sub_refresh (by the server, at expiry) ----

    /// Subscriptions of `s` the server refreshes whose time has come.
    pub(super) fn proxy_sub_refresh_due(&self, s: &Rc<Session>, now: u64) {
        let due: Vec<ChannelName> = {
            let Some(mut st) = s.proxy() else { return };
            st.sub_expiry
                .iter_mut()
                .filter(|(_, at, busy)| !*busy && *at <= now)
                .map(|(c, _, busy)| {
                    *busy = true;
                    c.clone()
                })
                .collect()
        };
        for channel in due {
            let p = self
                .opts
                .config
                .channel_options(&channel)
                .and_then(|o| self.proxy_named(&o.sub_refresh_proxy));
            let Some(p) = p else { continue };
            let Some((client, user)) = s.with_identity(|i| (i.client.to_arc(), i.user.clone()))
            else {
                return;
            };
            let meta = self.meta(s, p);
            let body = wire::body(&wire::SubRefreshRequest {
                base: base(s, &client),
                user: &user,
                channel: &channel,
                meta: meta.as_deref(),
            });
            let call = self.post(s, p, body);
            let (svc, s) = (self.clone(), s.clone());
            monoio::spawn(async move {
                let o = call.await;
                svc.proxy_sub_refreshed(&s, channel, p, o);
            });
        }
    }

    fn proxy_sub_refreshed(&self, s: &Rc<Session>, channel: ChannelName, p: usize, o: Outcome) {
        if s.conn.is_closing() {
            return;
        }
        let now = unix_now();
        let next = match self.read::<wire::SubRefreshResult>(p, "sub_refresh", &o) {
            Err(()) => Some(now + RETRY_REFRESH),
            Ok(Answer::Result(Some(r))) if !r.expired && r.expire_at > now => Some(r.expire_at),
            Ok(_) => None,
        };
        {
            let Some(mut st) = s.proxy() else { return };
            let Some(pos) = st.sub_expiry.iter().position(|(c, _, _)| *c == channel) else {
                // Unsubscribed meanwhile.
                return;
            };
            match next {
                Some(at) => {
                    st.sub_expiry[pos] = (channel.clone(), at, false);
                    return;
                }
                None => {
                    st.sub_expiry.remove(pos);
                }
            }
        }
        // Expired: the client is unsubscribed and subscribes again (2501:
        // the SDKs resubscribe, through the subscribe proxy).
        if s.unsubscribe(&channel) == Some(SubState::Active) {
            self.hub.subs.borrow_mut().remove(&channel, &s.conn);
            if let Some(c) = s.client_id() {
                self.hub.unsubscribe_at_owner(channel.clone(), c);
            }
            s.conn.send(push::unsubscribe_frame(
                &channel,
                2501,
                "subscription expired",
            ));
        }
    }

    /// A client unsubscribed: the server no longer refreshes that channel.
    pub(super) fn proxy_forget(&self, s: &Session, channel: &str) {
        if let Some(mut st) = s.proxy() {
            st.sub_expiry.retain(|(c, _, _)| &**c != channel);
            st.sub_data.retain(|(c, _)| &**c != channel);
        }
    }

    // ---- publish ----

    /// `raw` is the client's data; `data` the same bytes, shared.
    pub(super) fn proxy_publish(
        &self,
        s: &Rc<Session>,
        id: u32,
        channel: &str,
        (raw, data): (&RawValue, Bytes),
        p: usize,
    ) {
        let Some((client, user, info)) =
            s.with_identity(|i| (i.client.to_arc(), i.user.clone(), i.info()))
        else {
            return;
        };
        let meta = self.meta(s, p);
        let body = wire::body(&wire::PublishRequest {
            base: base(s, &client),
            user: &user,
            channel,
            data: raw,
            meta: meta.as_deref(),
        });
        let channel: ChannelName = channel.into();
        let call = self.post(s, p, body);
        let (svc, s) = (self.clone(), s.clone());
        monoio::spawn(async move {
            let o = call.await;
            svc.proxy_published(&s, id, channel, data, info, p, o);
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn proxy_published(
        &self,
        s: &Rc<Session>,
        id: u32,
        channel: ChannelName,
        data: Bytes,
        info: Bytes,
        p: usize,
        o: Outcome,
    ) {
        if s.conn.is_closing() {
            return;
        }
        let mut out = BytesMut::new();
        let Some(r) = self.result_of::<wire::PublishResult>(s, id, p, "publish", &o, &mut out)
        else {
            return self.send_out(s, &out);
        };
        let r = r.unwrap_or_default();
        let data = match self.payload_of(p, (&r.data, &r.b64data, "data"), id, &mut out) {
            Ok(Some(d)) => Bytes::from(d.get().to_string()),
            Ok(None) => data,
            Err(()) => return self.send_out(s, &out),
        };
        let reply = self.hub.reply_to(s.conn.id, id);
        let done = crate::broker::Done::Client(reply);
        if r.skip_history {
            self.hub
                .publish_without_history(channel, data, Some(info), done);
        } else {
            self.hub.publish(channel, data, Some(info), done);
        }
    }

    // ---- rpc ----

    pub(super) fn rpc(&self, s: &Rc<Session>, id: u32, req: RpcRequest<'_>, out: &mut BytesMut) {
        let rpc = &self.opts.config.rpc;
        // `NS:method` goes to that namespace's proxy; others to `[rpc]`'s.
        let name = match req.method.split_once(':') {
            Some((ns, _)) => match rpc.namespace.get(ns) {
                Some(n) => n.proxy.as_str(),
                None => return reply_error(out, id, codes::METHOD_NOT_FOUND),
            },
            None => rpc.proxy.as_str(),
        };
        let Some(p) = self.proxy_named(name) else {
            return reply_error(out, id, codes::METHOD_NOT_FOUND);
        };
        let Some((client, user)) = s.with_identity(|i| (i.client.to_arc(), i.user.clone())) else {
            return;
        };
        let meta = self.meta(s, p);
        let body = wire::body(&wire::RpcRequest {
            base: base(s, &client),
            user: &user,
            method: &req.method,
            data: req.data,
            meta: meta.as_deref(),
        });
        let call = self.post(s, p, body);
        let (svc, s) = (self.clone(), s.clone());
        monoio::spawn(async move {
            let o = call.await;
            svc.proxy_rpc_done(&s, id, p, o);
        });
    }

    fn proxy_rpc_done(&self, s: &Rc<Session>, id: u32, p: usize, o: Outcome) {
        if s.conn.is_closing() {
            return;
        }
        let mut out = BytesMut::new();
        if let Some(r) = self.result_of::<wire::RpcResult>(s, id, p, "rpc", &o, &mut out) {
            let r = r.unwrap_or_default();
            if let Ok(data) = self.payload_of(p, (&r.data, &r.b64data, "data"), id, &mut out) {
                push::open_result(&mut out, id, "rpc");
                if let Some(d) = data {
                    out.put_slice(b"\"data\":");
                    out.put_slice(d.get().as_bytes());
                }
                push::close_result(&mut out);
            }
        }
        self.send_out(s, &out);
    }
}

/// The subscribe request's recovery wishes, kept across the proxy call.
struct Asked {
    recoverable: bool,
    recover: Option<(u64, Arc<str>)>,
    reject_unrecovered: bool,
    delta: bool,
    filter: Option<Arc<crate::protocol::tags::FilterNode>>,
}

/// A backend's error for a command, as the client gets it.
fn error_reply(out: &mut BytesMut, id: u32, code: u32, message: &str, temporary: bool) {
    sep(out);
    push::error_parts(out, id, code, message, temporary);
}

/// The first fields of every proxy request.
fn base<'a>(s: &Session, client: &'a str) -> Base<'a> {
    let framing = s.conn.framing();
    Base {
        client,
        transport: framing.name(),
        protocol: if framing.is_protobuf() {
            "protobuf"
        } else {
            "json"
        },
        encoding: "json",
    }
}

/// The subscribe proxy's `data` for `channel`'s reply, taken.
pub fn take_sub_data(s: &Session, channel: &str) -> Option<Box<RawValue>> {
    let mut st = s.proxy()?;
    let pos = st.sub_data.iter().position(|(c, _)| &**c == channel)?;
    Some(st.sub_data.remove(pos).1)
}
