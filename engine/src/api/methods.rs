//! Centrifugo v5 server API methods over the hub. Each returns the JSON of its
//! `result` or a Centrifugo error.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::pin::Pin;

use bytes::{BufMut, Bytes, BytesMut};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::ApiCtx;
use crate::broker::{Control, HistoryQuery};
use crate::config::ChannelOptions;
use crate::hub::mesh::ChannelName;
use crate::protocol::codes::{self, ClientError};
use crate::protocol::json::{put_str, put_u64};

pub type ApiResult = Result<Bytes, ClientError>;

fn bad_request<E>(_: E) -> ClientError {
    codes::BAD_REQUEST
}

/// 107 for a bad name, 102 for an unknown namespace; the channel's options.
fn check_channel<'a>(ctx: &'a ApiCtx, channel: &str) -> Result<&'a ChannelOptions, ClientError> {
    if channel.is_empty() || channel.len() > ctx.max_channel_len {
        return Err(codes::BAD_REQUEST);
    }
    ctx.hub.channel_opts(channel).ok_or(codes::UNKNOWN_CHANNEL)
}

/// Runs `method` with a JSON `body`.
pub fn dispatch<'a>(
    ctx: &'a ApiCtx,
    method: &'a str,
    body: &'a Bytes,
) -> Pin<Box<dyn Future<Output = ApiResult> + 'a>> {
    Box::pin(async move {
        let body_slice: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            body
        };
        match method {
            "publish" => publish(ctx, body, body_slice).await,
            "broadcast" => broadcast(ctx, body, body_slice).await,
            "presence" => presence(ctx, body_slice, false).await,
            "presence_stats" => presence(ctx, body_slice, true).await,
            "history" => history(ctx, body_slice).await,
            "channels" => channels(ctx, body_slice).await,
            "info" => info(ctx).await,
            "disconnect" => disconnect(ctx, body_slice).await,
            "unsubscribe" => user_channel_op(ctx, body_slice, false).await,
            "subscribe" => user_channel_op(ctx, body_slice, true).await,
            "refresh" => Err(codes::NOT_AVAILABLE),
            "batch" => batch(ctx, body_slice).await,
            _ => Err(codes::METHOD_NOT_FOUND),
        }
    })
}

#[derive(Deserialize)]
struct PublishReq<'a> {
    #[serde(borrow)]
    channel: Cow<'a, str>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    /// Publication tags (strings only; anything else is a bad request).
    #[serde(default)]
    tags: Option<std::collections::BTreeMap<String, String>>,
}

/// A publish's `tags` as the JSON object the publication carries (none
/// when empty).
fn tags_json(tags: Option<std::collections::BTreeMap<String, String>>) -> Option<Bytes> {
    let tags = tags.filter(|t| !t.is_empty())?;
    Some(serde_json::to_vec(&tags).expect("strings encode").into())
}

/// `{"offset":N,"epoch":"E"}`, or `{}` for a publication that started no
/// stream (offset 0), as Centrifugo leaves out zero fields.
fn position_json(epoch: &str, offset: u64) -> Bytes {
    if offset == 0 {
        return Bytes::from_static(b"{}");
    }
    let mut out = BytesMut::with_capacity(48);
    out.put_slice(b"{\"offset\":");
    put_u64(&mut out, offset);
    out.put_slice(b",\"epoch\":");
    put_str(&mut out, epoch);
    out.put_u8(b'}');
    out.freeze()
}

async fn publish(ctx: &ApiCtx, body: &Bytes, raw: &[u8]) -> ApiResult {
    let req: PublishReq<'_> = serde_json::from_slice(raw).map_err(bad_request)?;
    check_channel(ctx, &req.channel)?;
    let data = req.data.ok_or(codes::BAD_REQUEST)?;
    let data = slice_of(body, data.get().as_bytes());
    let tags = tags_json(req.tags);
    let (epoch, offset) = ctx
        .hub
        .publish_tagged((*req.channel).into(), data, None, tags)
        .await?;
    Ok(position_json(&epoch, offset))
}

/// `part` as a zero-copy slice of `body` when it lies inside it.
fn slice_of(body: &Bytes, part: &[u8]) -> Bytes {
    let inside = body.as_ptr_range().contains(&part.as_ptr()) || part.is_empty();
    if inside && !body.is_empty() {
        body.slice_ref(part)
    } else {
        Bytes::copy_from_slice(part)
    }
}

#[derive(Deserialize)]
struct BroadcastReq<'a> {
    #[serde(borrow)]
    channels: Vec<Cow<'a, str>>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    #[serde(default)]
    tags: Option<std::collections::BTreeMap<String, String>>,
}

async fn broadcast(ctx: &ApiCtx, body: &Bytes, raw: &[u8]) -> ApiResult {
    let req: BroadcastReq<'_> = serde_json::from_slice(raw).map_err(bad_request)?;
    let data = slice_of(body, req.data.ok_or(codes::BAD_REQUEST)?.get().as_bytes());
    if req.channels.is_empty() {
        return Err(codes::BAD_REQUEST);
    }
    let tags = tags_json(req.tags);
    let mut pending = Vec::with_capacity(req.channels.len());
    for ch in &req.channels {
        match check_channel(ctx, ch) {
            Ok(_) => {
                let channel: ChannelName = (**ch).into();
                let call = ctx
                    .hub
                    .publish_tagged(channel, data.clone(), None, tags.clone());
                pending.push(Ok(call));
            }
            Err(e) => pending.push(Err(e)),
        }
    }
    let mut out = BytesMut::from(&b"{\"responses\":["[..]);
    for (i, p) in pending.into_iter().enumerate() {
        if i > 0 {
            out.put_u8(b',');
        }
        match p {
            Ok(call) => match call.await {
                Ok((epoch, offset)) => {
                    out.put_slice(b"{\"result\":");
                    out.put_slice(&position_json(&epoch, offset));
                    out.put_u8(b'}');
                }
                Err(e) => error_object(&mut out, e),
            },
            Err(e) => error_object(&mut out, e),
        }
    }
    out.put_slice(b"]}");
    Ok(out.freeze())
}

/// `{"error":{"code":C,"message":"M"}}`
pub fn error_object(out: &mut BytesMut, e: ClientError) {
    out.put_slice(b"{\"error\":{\"code\":");
    put_u64(out, e.code as u64);
    out.put_slice(b",\"message\":");
    put_str(out, e.message);
    out.put_slice(b"}}");
}

#[derive(Deserialize)]
struct ChannelReq {
    channel: String,
}

async fn presence(ctx: &ApiCtx, raw: &[u8], stats: bool) -> ApiResult {
    let req: ChannelReq = serde_json::from_slice(raw).map_err(bad_request)?;
    let opts = check_channel(ctx, &req.channel)?;
    if !opts.presence {
        return Err(codes::NOT_AVAILABLE);
    }
    let (then, call) = ctx.hub.waiter();
    ctx.hub.presence(req.channel.into(), stats, then);
    let fields = call.await?;
    let mut out = BytesMut::with_capacity(fields.len() + 2);
    out.put_u8(b'{');
    out.put_slice(&fields);
    out.put_u8(b'}');
    Ok(out.freeze())
}

#[derive(Deserialize)]
struct HistoryReq {
    channel: String,
    #[serde(default)]
    limit: i64,
    #[serde(default)]
    since: Option<SincePos>,
    #[serde(default)]
    reverse: bool,
}

#[derive(Deserialize)]
struct SincePos {
    #[serde(default)]
    offset: u64,
    #[serde(default)]
    epoch: String,
}

async fn history(ctx: &ApiCtx, raw: &[u8]) -> ApiResult {
    let req: HistoryReq = serde_json::from_slice(raw).map_err(bad_request)?;
    if !check_channel(ctx, &req.channel)?.history_enabled() {
        return Err(codes::NOT_AVAILABLE);
    }
    let q = HistoryQuery {
        channel: req.channel.into(),
        since: req.since.map(|p| (p.offset, p.epoch)),
        limit: req.limit,
        reverse: req.reverse,
    };
    let (then, call) = ctx.hub.waiter();
    ctx.hub.history(q, then);
    let (pubs, epoch, offset) = call.await?;
    let mut out = BytesMut::from(&b"{\"publications\":"[..]);
    crate::protocol::push::put_array(&mut out, &pubs);
    out.put_u8(b',');
    crate::protocol::push::stream_position(&mut out, &epoch, offset);
    out.put_u8(b'}');
    Ok(out.freeze())
}

#[derive(Deserialize, Default)]
struct ChannelsReq {
    #[serde(default)]
    pattern: String,
}

async fn channels(ctx: &ApiCtx, raw: &[u8]) -> ApiResult {
    let req: ChannelsReq = serde_json::from_slice(raw).map_err(bad_request)?;
    let (then, others) = ctx.hub.waiter();
    ctx.hub.broker().other_channels(&ctx.hub, then);
    let all = ctx.hub.call_all(|h| h.channel_counts()).await;
    let mut merged: BTreeMap<ChannelName, u64> = BTreeMap::new();
    let remote = others
        .await
        .into_iter()
        .map(|(c, n)| (ChannelName::from(c), n));
    for (name, n) in all.into_iter().flatten().chain(remote) {
        if req.pattern.is_empty() || glob_match(&req.pattern, &name) {
            *merged.entry(name).or_default() += n;
        }
    }
    let mut out = BytesMut::from(&b"{\"channels\":{"[..]);
    for (i, (name, n)) in merged.iter().enumerate() {
        if i > 0 {
            out.put_u8(b',');
        }
        put_str(&mut out, name);
        out.put_slice(b":{\"num_clients\":");
        put_u64(&mut out, *n);
        out.put_u8(b'}');
    }
    out.put_slice(b"}}");
    Ok(out.freeze())
}

/// Glob with `*` (any run) and `?` (one character).
pub fn glob_match(pattern: &str, s: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (pattern.chars().collect(), s.chars().collect());
    let (mut pi, mut si, mut star, mut mark) = (0, 0, None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

async fn info(ctx: &ApiCtx) -> ApiResult {
    let mut nodes = vec![local_node_info(ctx).await];
    nodes.extend(ctx.hub.broker().other_nodes());
    Ok(Bytes::from(
        serde_json::to_vec(&serde_json::json!({ "nodes": nodes })).expect("json"),
    ))
}

/// This node's entry in `info` (also its heartbeat to other nodes).
pub async fn local_node_info(ctx: &ApiCtx) -> serde_json::Value {
    let per_shard = ctx
        .hub
        .call_all(|h| {
            let (clients, users) = h.clients().census();
            (
                clients,
                users,
                h.channel_counts().len(),
                h.subs.borrow().total_subscriptions(),
            )
        })
        .await;
    let mut users = HashSet::new();
    let (mut clients, mut channels, mut subs) = (0, 0, 0);
    for (c, u, ch, s) in per_shard {
        clients += c;
        channels += ch;
        subs += s;
        users.extend(u);
    }
    let node = serde_json::json!({
        "uid": &*ctx.node_uid,
        "name": &*ctx.node_name,
        "version": crate::VERSION,
        "num_clients": clients,
        "num_users": users.len(),
        "num_channels": channels,
        "num_subs": subs,
        "uptime": ctx.started.elapsed().as_secs(),
    });
    node
}

#[derive(Deserialize)]
struct DisconnectReq {
    user: String,
    #[serde(default)]
    client: Option<String>,
    #[serde(default)]
    disconnect: Option<DisconnectSpec>,
}

#[derive(Deserialize)]
struct DisconnectSpec {
    code: u16,
    #[serde(default)]
    reason: String,
}

async fn disconnect(ctx: &ApiCtx, raw: &[u8]) -> ApiResult {
    let req: DisconnectReq = serde_json::from_slice(raw).map_err(bad_request)?;
    let (code, reason) = match req.disconnect {
        Some(d) if (3000..=4999).contains(&d.code) => (d.code, d.reason),
        Some(_) => return Err(codes::BAD_REQUEST),
        None => (
            codes::FORCE_NO_RECONNECT.code,
            codes::FORCE_NO_RECONNECT.reason.to_string(),
        ),
    };
    let c = Control::Disconnect {
        user: req.user,
        client: req.client,
        code,
        reason,
    };
    apply_everywhere(ctx, c).await;
    Ok(Bytes::from_static(b"{}"))
}

#[derive(Deserialize)]
struct UserChannelReq {
    user: String,
    channel: String,
    #[serde(default)]
    client: Option<String>,
}

async fn user_channel_op(ctx: &ApiCtx, raw: &[u8], subscribe: bool) -> ApiResult {
    let req: UserChannelReq = serde_json::from_slice(raw).map_err(bad_request)?;
    check_channel(ctx, &req.channel)?;
    let (user, channel, client) = (req.user, req.channel, req.client);
    let c = if subscribe {
        Control::Subscribe {
            user,
            client,
            channel,
        }
    } else {
        Control::Unsubscribe {
            user,
            client,
            channel,
        }
    };
    apply_everywhere(ctx, c).await;
    Ok(Bytes::from_static(b"{}"))
}

/// Applies a control action on every shard of this node and sends it to the
/// other nodes.
async fn apply_everywhere(ctx: &ApiCtx, c: Control) {
    ctx.hub.broker().control(&ctx.hub, c.clone());
    let apply = ctx.control.clone();
    ctx.hub.call_all(move |h| apply(h, &c)).await;
}

#[derive(Deserialize)]
struct BatchReq<'a> {
    #[serde(borrow)]
    commands: Vec<BTreeMap<String, &'a RawValue>>,
}

async fn batch(ctx: &ApiCtx, raw: &[u8]) -> ApiResult {
    let req: BatchReq<'_> = serde_json::from_slice(raw).map_err(bad_request)?;
    let mut out = BytesMut::from(&b"{\"replies\":["[..]);
    for (i, cmd) in req.commands.iter().enumerate() {
        if i > 0 {
            out.put_u8(b',');
        }
        let mut it = cmd.iter();
        match (it.next(), it.next()) {
            (Some((method, params)), None) if method != "batch" => {
                let params = Bytes::copy_from_slice(params.get().as_bytes());
                match dispatch(ctx, method, &params).await {
                    Ok(result) => {
                        out.put_u8(b'{');
                        put_str(&mut out, method);
                        out.put_u8(b':');
                        out.put_slice(&result);
                        out.put_u8(b'}');
                    }
                    Err(e) => error_object(&mut out, e),
                }
            }
            _ => error_object(&mut out, codes::BAD_REQUEST),
        }
    }
    out.put_slice(b"]}");
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs() {
        assert!(glob_match("*", "anything"));
        assert!(glob_match("chat:*", "chat:room1"));
        assert!(!glob_match("chat:*", "news:1"));
        assert!(glob_match("a?c", "abc"));
        assert!(glob_match("*:1*", "x:12"));
        assert!(!glob_match("a?c", "ac"));
    }
}
