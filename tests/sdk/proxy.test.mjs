// Centrifugo-style proxies against a real HTTP backend (backend.mjs, Node's
// http on a loopback port): connect, refresh, subscribe, publish,
// sub_refresh and rpc, through centrifuge-js in Node. Each proxy is tried
// accepting, rejecting (error), disconnecting, timing out, answering 500 or
// nonsense, and with its backend down; the outcomes are Centrifugo's (error
// 100 temporary, which the SDK retries, for anything the backend could not
// answer). /metrics counts every call per proxy, and passes promtool.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Centrifuge } from 'centrifuge';
import WebSocket from 'ws';
import { startBackend, deadPort } from './backend.mjs';
import { api, eventually, hs256Token, openRaw, startWithConfig, waitFor } from './harness.mjs';

const SECRET = 'proxy-test-secret';
const KEY = 'proxy-test-key';

/// centrifuge-js's WebSocket, sending the headers a browser or an app
/// would (the proxies forward only those configured).
class HeaderWS extends WebSocket {
  constructor(url, protocols) {
    super(url, protocols, { headers: { 'X-Test-Auth': 'token-abc', Cookie: 'sid=secret' } });
  }
}

/// The backend's default answers.
function routes() {
  return {
    '/connect': ({ body }) => {
      const mode = body.data?.mode;
      if (mode === 'reject') return { json: { error: { code: 4001, message: 'not allowed' } } };
      if (mode === 'bye') return { json: { disconnect: { code: 4501, reason: 'go away' } } };
      if (mode === 'fail') return { status: 500, text: 'boom' };
      if (mode === 'garbage') return { text: 'ok' };
      if (mode === 'slow') return { delay: 1500, json: {} };
      if (mode === 'anonymous') return { json: { result: { user: '' } } };
      return {
        json: {
          result: {
            user: body.data?.user ?? 'someone',
            info: { name: body.data?.user },
            data: { welcome: body.client },
            meta: { tenant: 't1' },
            ...(body.data?.expire_in ? { expire_at: Math.floor(Date.now() / 1000) + body.data.expire_in } : {}),
          },
        },
      };
    },
    '/subscribe': ({ body }) => {
      const ch = body.channel;
      if (ch.startsWith('chat:deny')) return { json: { error: { code: 4003, message: 'members only' } } };
      if (ch.startsWith('chat:kick')) return { json: { disconnect: { code: 4502, reason: 'kicked' } } };
      if (ch.startsWith('chat:hidden')) return { json: { result: { override: { presence: { value: false } } } } };
      if (ch.startsWith('exp:')) return { json: { result: { expire_at: Math.floor(Date.now() / 1000) + 1 } } };
      return { json: { result: { info: { role: 'member' }, data: { hello: ch } } } };
    },
    '/publish': ({ body }) => {
      const mode = body.data?.mode;
      if (mode === 'reject') return { json: { error: { code: 4002, message: 'not this' } } };
      if (mode === 'rewrite') return { json: { result: { data: { text: String(body.data.text).toUpperCase(), by: body.user } } } };
      if (mode === 'skip') return { json: { result: { skip_history: true } } };
      if (mode === 'bye') return { json: { disconnect: { code: 4503, reason: 'no publishing' } } };
      if (mode === 'slow') return { delay: 1500, json: {} };
      if (mode === 'fail') return { status: 502, text: 'bad gateway' };
      return { json: {} };
    },
    '/rpc': ({ body, headers }) => (body.method === 'bye' ? { json: { disconnect: { code: 4504, reason: 'rpc says bye' } } } : {
      json: { result: { data: { method: body.method, got: body.data ?? null, user: body.user, meta: body.meta ?? null, auth: headers['x-test-auth'] ?? null } } },
    }),
    '/billing': ({ body }) => {
      if (body.method === 'billing:fail') return { status: 503, text: 'later' };
      if (body.method === 'billing:error') return { json: { error: { code: 4100, message: 'insufficient funds', temporary: true } } };
      return { json: { result: { data: { balance: 10, method: body.method } } } };
    },
    '/slow': () => ({ delay: 1500, json: {} }),
  };
}

async function config(backend, extra = '') {
  const dead = await deadPort();
  return `
[client]
connect_proxy = "connect"
[proxy.connect]
endpoint = "${backend.url('/connect')}"
timeout = 0.5
http_headers = ["X-Test-Auth"]
static_http_headers = { "X-Static" = "static-value" }
[proxy.subscribe]
endpoint = "${backend.url('/subscribe')}"
include_connection_meta = true
[proxy.publish]
endpoint = "${backend.url('/publish')}"
[proxy.rpc]
endpoint = "${backend.url('/rpc')}"
include_connection_meta = true
http_headers = ["X-Test-Auth"]
[proxy.billing]
endpoint = "${backend.url('/billing')}"
[proxy.down]
endpoint = "http://127.0.0.1:${dead}/nothing"
[proxy.slow]
endpoint = "${backend.url('/slow')}"
timeout = 0.3
[rpc]
proxy = "rpc"
[rpc.namespace.billing]
proxy = "billing"
[rpc.namespace.dead]
proxy = "down"
[rpc.namespace.slow]
proxy = "slow"
[namespace.chat]
presence = true
history_size = 10
history_ttl = 300
subscribe_proxy = "subscribe"
publish_proxy = "publish"
[namespace.downsub]
subscribe_proxy = "down"
[namespace.downpub]
allow_subscribe_for_client = true
publish_proxy = "down"
[namespace.slowpub]
allow_subscribe_for_client = true
publish_proxy = "slow"
[namespace.slowsub]
subscribe_proxy = "slow"
${extra}
`;
}

function client(server, data, opts = {}) {
  return new Centrifuge(server.url, { websocket: HeaderWS, data, minReconnectDelay: 50, maxReconnectDelay: 200, ...opts });
}

async function connected(c) {
  const p = new Promise((resolve, reject) => {
    setTimeout(() => reject(new Error(`not connected in 10 s (${c.state})`)), 10000).unref();
    c.once('connected', resolve);
    c.once('disconnected', (ctx) => reject(new Error(`disconnected: ${JSON.stringify(ctx)}`)));
  });
  c.connect();
  return p;
}

async function subscribed(sub) {
  const p = new Promise((resolve, reject) => {
    setTimeout(() => reject(new Error(`not subscribed in 10 s (${sub.state})`)), 10000).unref();
    sub.once('subscribed', resolve);
    sub.once('unsubscribed', (ctx) => reject(Object.assign(new Error(`unsubscribed: ${JSON.stringify(ctx)}`), { ctx })));
  });
  sub.subscribe();
  return p;
}

async function metricsText(server) {
  const res = await fetch(`http://${server.apiAddr}/metrics`);
  return res.text();
}

function metric(text, name, labels) {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(',');
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${want}}`));
  return line ? Number(line.split(' ').pop()) : undefined;
}

test('proxies accept: connect (headers, data, meta), subscribe (data, info, override), publish (rewrite, skip_history), rpc (routing, meta, headers)', async () => {
  const backend = await startBackend(routes());
  const server = await startWithConfig(await config(backend), ['--shards', '2']);
  const alice = client(server, { user: 'alice' });
  try {
    const ctx = await connected(alice);
    assert.deepEqual(ctx.data, { welcome: ctx.client }, 'the connect result data; the backend was told the client id the connection has');
    const [conn] = backend.calls('/connect');
    assert.equal(conn.method, 'POST');
    assert.equal(conn.headers['content-type'], 'application/json');
    assert.deepEqual(
      { client: conn.body.client, transport: conn.body.transport, protocol: conn.body.protocol, encoding: conn.body.encoding, name: conn.body.name, data: conn.body.data },
      { client: ctx.client, transport: 'websocket', protocol: 'json', encoding: 'json', name: 'js', data: { user: 'alice' } },
    );
    assert.equal(conn.headers['x-test-auth'], 'token-abc', 'an allowed header is forwarded');
    assert.equal(conn.headers['x-static'], 'static-value', 'static headers are sent');
    assert.equal(conn.headers.cookie, undefined, 'headers not listed are not forwarded');

    // Subscribe: the backend's data reaches the SDK; its info is the
    // channel info in presence; the connection meta rides along.
    const room = alice.newSubscription('chat:room', { data: { want: 'in' } });
    const sctx = await subscribed(room);
    assert.deepEqual(sctx.data, { hello: 'chat:room' });
    const [sreq] = backend.calls('/subscribe');
    assert.deepEqual(
      { user: sreq.body.user, channel: sreq.body.channel, data: sreq.body.data, meta: sreq.body.meta, client: sreq.body.client },
      { user: 'alice', channel: 'chat:room', data: { want: 'in' }, meta: { tenant: 't1' }, client: ctx.client },
    );
    const presence = await room.presence();
    assert.deepEqual(Object.values(presence.clients).map((c) => ({ user: c.user, connInfo: c.connInfo, chanInfo: c.chanInfo })), [
      { user: 'alice', connInfo: { name: 'alice' }, chanInfo: { role: 'member' } },
    ], 'the connect proxy user and info, the subscribe proxy info');

    // An override turns presence off for the subscriber.
    const hidden = alice.newSubscription('chat:hidden');
    await subscribed(hidden);
    assert.deepEqual((await hidden.presence()).clients, {}, 'override presence=false: not in presence');

    // Publish: rewritten by the backend; rejected with its error; one kept
    // out of history.
    const got = [];
    room.on('publication', (p) => got.push(p.data));
    await room.publish({ text: 'hi', mode: 'rewrite' });
    await waitFor(() => got.length === 1, 5000, 'the rewritten publication');
    assert.deepEqual(got[0], { text: 'HI', by: 'alice' });
    await assert.rejects(room.publish({ mode: 'reject' }), (e) => e.code === 4002 && e.message === 'not this');
    await room.publish({ text: 'plain' });
    await room.publish({ text: 'transient', mode: 'skip' });
    await waitFor(() => got.length === 3, 5000, 'plain and transient publications');
    assert.deepEqual(got.slice(1).map((d) => d.text), ['plain', 'transient']);
    const h = await room.history({ limit: 10 });
    assert.deepEqual(h.publications.map((p) => p.data.text), ['HI', 'plain'], 'skip_history: delivered, not kept');
    assert.equal(backend.calls('/publish').length, 4);

    // RPC: routed by namespace, the backend's data back, meta and the
    // allowed header forwarded.
    const r = await alice.rpc('echo', { a: 1 });
    assert.deepEqual(r.data, { method: 'echo', got: { a: 1 }, user: 'alice', meta: { tenant: 't1' }, auth: 'token-abc' });
    const b = await alice.rpc('billing:balance', {});
    assert.deepEqual(b.data, { balance: 10, method: 'billing:balance' }, 'NS:method goes to the namespace proxy, named in full');
    await assert.rejects(alice.rpc('billing:error', {}), (e) => e.code === 4100 && e.message === 'insufficient funds');
    await assert.rejects(alice.rpc('nowhere:x', {}), (e) => e.code === 104, 'an unknown rpc namespace: method not found');
    await assert.rejects(alice.rpc('billing:fail', {}), (e) => e.code === 100, 'a 503: internal error');
    await assert.rejects(alice.rpc('dead:x', {}), (e) => e.code === 100, 'backend down: internal error');
    await assert.rejects(alice.rpc('slow:x', {}), (e) => e.code === 100, 'a timeout: internal error');
    assert.equal(backend.open, 1, 'answered at the proxy timeout, while the backend still holds the call');
    // Other commands are served while a call is outstanding.
    const slow = alice.rpc('slow:y', {}).catch((e) => e);
    const fast = await alice.rpc('echo', { fast: true });
    assert.deepEqual(fast.data.got, { fast: true });
    assert.equal((await slow).code, 100);

    const text = await metricsText(server);
    assert.equal(metric(text, 'ringcast_proxy_requests_total', { proxy: 'down', result: 'unreachable' }), 1);
    assert.equal(metric(text, 'ringcast_proxy_requests_total', { proxy: 'slow', result: 'timeout' }), 2);
    assert.equal(metric(text, 'ringcast_proxy_requests_total', { proxy: 'billing', result: 'status' }), 1);
    assert.ok(metric(text, 'ringcast_proxy_requests_total', { proxy: 'connect', result: 'ok' }) >= 1);
    const lint = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(lint.status, 0, `promtool: ${lint.error ?? ''}${lint.stdout}${lint.stderr}`);
  } finally {
    alice.disconnect();
    await server.stop();
    await backend.stop();
  }
});

test('connect proxy refusals and failures: error and disconnect answers end the connection; 500, nonsense, timeouts and a dead backend are error 100 and the SDK retries', async () => {
  const backend = await startBackend(routes());
  const server = await startWithConfig(await config(backend), ['--token-hmac-secret-key', SECRET]);
  const clients = [];
  const make = (data, opts) => {
    const c = client(server, data, opts);
    clients.push(c);
    return c;
  };
  try {
    // The backend's error: not temporary, so the SDK stops.
    const rejected = make({ mode: 'reject' });
    await assert.rejects(connected(rejected), /"code":4001/);
    assert.equal(rejected.state, 'disconnected');
    // Its disconnect: the close code and reason.
    const bye = make({ mode: 'bye' });
    await assert.rejects(connected(bye), /"code":4501,"reason":"go away"/);

    // A backend that cannot answer: error 100, temporary, retried until it can.
    for (const mode of ['fail', 'garbage', 'slow']) {
      const c = make({ mode, user: mode });
      const errors = [];
      c.on('error', (ctx) => errors.push(ctx.error?.code));
      c.connect();
      await waitFor(() => errors.length >= 2, 10000, () => `${mode}: two failed attempts (${errors})`);
      assert.ok(errors.every((code) => code === 100), `${mode}: ${errors}`);
      assert.equal(c.state, 'connecting', `${mode}: the SDK keeps trying`);
      c.disconnect();
    }
    const text = await metricsText(server);
    assert.ok(metric(text, 'ringcast_proxy_requests_total', { proxy: 'connect', result: 'status' }) >= 2);
    assert.ok(metric(text, 'ringcast_proxy_requests_total', { proxy: 'connect', result: 'timeout' }) >= 2);
    assert.ok(metric(text, 'ringcast_proxy_answers_unusable_total', { proxy: 'connect' }) >= 2);

    // Failing, then healthy again: the same client gets in.
    const flaky = make({ mode: 'fail', user: 'flaky' });
    const errors = [];
    flaky.on('error', (ctx) => errors.push(ctx.error?.code));
    const up = new Promise((resolve) => flaky.once('connected', resolve));
    flaky.connect();
    await waitFor(() => errors.length >= 1, 5000, 'a failed attempt');
    const orig = backend.routes['/connect'];
    backend.routes['/connect'] = (r) => orig({ ...r, body: { ...r.body, data: { user: 'flaky' } } });
    await up;
    backend.routes['/connect'] = orig;

    // No result at all (`{}`) is a bad request without insecure mode.
    backend.routes['/connect'] = () => ({ json: {} });
    const empty = make({});
    await assert.rejects(connected(empty), /"code":3501/);
    backend.routes['/connect'] = orig;

    // A connection token skips the connect proxy.
    const before = backend.calls('/connect').length;
    const jwt = make(undefined, { token: hs256Token(SECRET, { sub: 'carol' }) });
    await connected(jwt);
    assert.equal(backend.calls('/connect').length, before, 'no connect proxy call with a token');
    // An anonymous user from the backend is a valid connection.
    const anon = make({ mode: 'anonymous' });
    await connected(anon);
  } finally {
    for (const c of clients) c.disconnect();
    await server.stop();
    await backend.stop();
  }
});

test('connect proxy with its backend down: error 100 and retries, counted as unreachable', async () => {
  const dead = await deadPort();
  const server = await startWithConfig(`
[client]
connect_proxy = "auth"
[proxy.auth]
endpoint = "http://127.0.0.1:${dead}/connect"
`);
  const c = new Centrifuge(server.url, { websocket: WebSocket, minReconnectDelay: 50, maxReconnectDelay: 100 });
  try {
    const errors = [];
    c.on('error', (ctx) => errors.push(ctx.error?.code));
    c.connect();
    await waitFor(() => errors.length >= 3, 10000, () => `three attempts (${errors})`);
    assert.ok(errors.every((e) => e === 100), String(errors));
    await eventually(async () => metric(await metricsText(server), 'ringcast_proxy_requests_total', { proxy: 'auth', result: 'unreachable' }) >= 3, 5000, 'unreachable counted');
  } finally {
    c.disconnect();
    await server.stop();
  }
});

test('subscribe proxy refusals and failures: error → unsubscribed with its code, disconnect → closed, dead or slow backend → error 100 and resubscribe', async () => {
  const backend = await startBackend(routes());
  const server = await startWithConfig(await config(backend));
  const c = client(server, { user: 'dave' });
  try {
    await connected(c);
    const deny = c.newSubscription('chat:deny');
    await assert.rejects(subscribed(deny), (e) => e.ctx?.code === 4003);
    assert.equal(deny.state, 'unsubscribed');

    // Dead and slow backends: temporary errors, the SDK resubscribes.
    for (const ch of ['downsub:x', 'slowsub:x']) {
      const sub = c.newSubscription(ch);
      const errors = [];
      sub.on('error', (ctx) => errors.push(ctx.error?.code));
      sub.subscribe();
      await waitFor(() => errors.length >= 2, 10000, () => `${ch}: two attempts (${errors})`);
      assert.ok(errors.every((e) => e === 100), `${ch}: ${errors}`);
      assert.equal(sub.state, 'subscribing');
      sub.unsubscribe();
      c.removeSubscription(sub);
    }
    // The connection served other commands all along.
    assert.equal(c.state, 'connected');

    // A disconnect answer closes the connection.
    const closed = new Promise((resolve) => c.once('disconnected', resolve));
    c.newSubscription('chat:kick').subscribe();
    const ctx = await closed;
    assert.deepEqual({ code: ctx.code, reason: ctx.reason }, { code: 4502, reason: 'kicked' });
  } finally {
    c.disconnect();
    await server.stop();
    await backend.stop();
  }
});

test('refresh proxy: the server refreshes at expiry (the client is not asked), extends, then ends the connection with 3005; the SDK reconnects through the connect proxy', async () => {
  const backend = await startBackend(routes());
  let refreshes = 0;
  backend.routes['/refresh'] = ({ body }) => {
    refreshes++;
    if (refreshes <= 2) return { json: { result: { expire_at: Math.floor(Date.now() / 1000) + 1, info: { name: 'refreshed' } } } };
    return { json: { result: { expired: true } } };
  };
  backend.routes['/subrefresh'] = () => ({ json: { result: { expire_at: Math.floor(Date.now() / 1000) + 1 } } });
  const toml = (await config(backend, `
[proxy.refresh]
endpoint = "${backend.url('/refresh')}"
include_connection_meta = true
`)).replace('connect_proxy = "connect"', 'connect_proxy = "connect"\nrefresh_proxy = "refresh"\nping_interval = 1');
  const server = await startWithConfig(toml);
  // No getToken: had the server told the client its ttl, centrifuge-js
  // would have ended the connection itself (unauthorized) at expiry.
  const c = client(server, { user: 'erin', expire_in: 1 });
  try {
    const codes = [];
    c.on('connecting', (ctx) => codes.push(ctx.code));
    const first = await connected(c);
    await waitFor(() => codes.includes(3005), 8000, () => `3005 after the refresh proxy said expired (refreshes ${refreshes}, codes ${codes})`);
    assert.equal(refreshes, 3, 'two extensions, then expired');
    const reqs = backend.calls('/refresh');
    assert.deepEqual({ user: reqs[0].body.user, client: reqs[0].body.client, meta: reqs[0].body.meta }, { user: 'erin', client: first.client, meta: { tenant: 't1' } });
    await waitFor(() => c.state === 'connected', 10000, 'reconnected');
    assert.equal(backend.calls('/connect').length, 2, 'the reconnect went through the connect proxy');
  } finally {
    c.disconnect();
    await server.stop();
    await backend.stop();
  }
});

test('refresh proxy refusals and failures: an error or a disconnect answer ends the connection with 3005; a 500, a timeout or a dead backend keep it (asked again in 60 s), counted per result', async () => {
  const backend = await startBackend(routes());
  backend.routes['/refresh'] = ({ body }) => {
    if (body.user === 'err') return { json: { error: { code: 4010, message: 'no more' } } };
    if (body.user === 'bye') return { json: { disconnect: { code: 4511, reason: 'refresh says bye' } } };
    if (body.user === 'fail') return { status: 500, text: 'boom' };
    return { delay: 1500, json: { result: { expire_at: Math.floor(Date.now() / 1000) + 600 } } };
  };
  const dead = await deadPort();
  // Each client is subscribed by the server to a channel of its own (the
  // connect result's `channels`), to show it is still served.
  const connect = backend.routes['/connect'];
  backend.routes['/connect'] = (req) => {
    const answer = connect(req);
    answer.json.result.channels = [`refreshed:${req.body.data.user}`];
    return answer;
  };
  const make = async (endpoint) => (await config(backend, `
[proxy.refresh]
endpoint = "${endpoint}"
timeout = 0.3
[api]
key = "${KEY}"
[namespace.refreshed]
`)).replace('connect_proxy = "connect"', 'connect_proxy = "connect"\nrefresh_proxy = "refresh"\nping_interval = 1');
  const server = await startWithConfig(await make(backend.url('/refresh')));
  const downServer = await startWithConfig(await make(`http://127.0.0.1:${dead}/refresh`));
  const users = { err: server, bye: server, fail: server, slow: server, down: downServer };
  const clients = {};
  const codes = {};
  const pubs = {};
  try {
    for (const [user, srv] of Object.entries(users)) {
      const c = client(srv, { user, expire_in: 1 });
      codes[user] = [];
      pubs[user] = [];
      c.on('publication', (ctx) => pubs[user].push(ctx.data));
      await connected(c);
      c.on('connecting', (ctx) => codes[user].push(ctx.code));
      clients[user] = c;
    }
    // Refused: the connection ends with 3005 and the SDK comes back through the connect proxy.
    for (const user of ['err', 'bye']) {
      await waitFor(() => codes[user].includes(3005), 8000, () => `${user}: 3005 (codes ${codes[user]})`);
    }
    // Failed: each failure is counted, and the connection is still served after it.
    const failed = [[server, 'status'], [server, 'timeout'], [downServer, 'unreachable']];
    for (const [srv, result] of failed) {
      await eventually(async () => metric(await metricsText(srv), 'ringcast_proxy_requests_total', { proxy: 'refresh', result }) >= 1, 8000, `a refresh counted as ${result}`);
    }
    for (const [user, srv] of [['fail', server], ['slow', server], ['down', downServer]]) {
      await api(srv, KEY, 'publish', { channel: `refreshed:${user}`, data: { still: user } });
      await waitFor(() => pubs[user].some((d) => d.still === user), 5000, `${user} still gets publications after its refresh failed`);
      assert.deepEqual(codes[user], [], `${user} was not disconnected`);
      assert.equal(clients[user].state, 'connected');
    }
  } finally {
    for (const c of Object.values(clients)) c.disconnect();
    await server.stop();
    await downServer.stop();
    await backend.stop();
  }
});

test('sub_refresh proxy: the server refreshes an expiring subscription, unsubscribes it with 2501 when the backend says expired (the SDK resubscribes through the subscribe proxy), keeps it when the backend fails', async () => {
  const backend = await startBackend(routes());
  let refreshes = 0;
  backend.routes['/subrefresh'] = ({ body }) => {
    refreshes++;
    assert.equal(body.channel, 'exp:a');
    if (refreshes === 1) return { json: { result: { expire_at: Math.floor(Date.now() / 1000) + 1 } } };
    if (refreshes === 2) return { json: { result: { expired: true } } };
    return { status: 500, text: 'retry later' };
  };
  const toml = (await config(backend, `
[proxy.subrefresh]
endpoint = "${backend.url('/subrefresh')}"
[namespace.exp]
subscribe_proxy = "subscribe"
sub_refresh_proxy = "subrefresh"
`)).replace('connect_proxy = "connect"', 'connect_proxy = "connect"\nping_interval = 1');
  const server = await startWithConfig(toml);
  const c = client(server, { user: 'fay' });
  try {
    await connected(c);
    // No getToken: told a ttl, centrifuge-js would unsubscribe itself.
    const sub = c.newSubscription('exp:a');
    const codes = [];
    const errors = [];
    sub.on('subscribing', (ctx) => codes.push(ctx.code));
    sub.on('error', (ctx) => errors.push(ctx));
    await subscribed(sub);
    await waitFor(() => codes.includes(2501), 15000, () => `unsubscribed with 2501 (refreshes ${refreshes}, codes ${codes})`);
    await waitFor(() => sub.state === 'subscribed' && backend.calls('/subscribe').length === 2, 10000, 'resubscribed through the subscribe proxy');
    // The third call fails: the subscription stays (retried a minute later).
    await waitFor(() => refreshes >= 3, 10000, () => `a third refresh call (${refreshes})`);
    await eventually(async () => (await metricsText(server)).includes('ringcast_proxy_requests_total{proxy="subrefresh",result="status"} 1'), 5000, 'the failed call counted');
    assert.equal(sub.state, 'subscribed', 'a failed sub refresh keeps the subscription');
    assert.deepEqual(errors, [], 'no error on the subscription');
  } finally {
    c.disconnect();
    await server.stop();
    await backend.stop();
  }
});

test('sub_refresh proxy refusals and failures: an error or a disconnect answer unsubscribes with 2501; a timeout or a dead backend keep the subscription, counted per result', async () => {
  const backend = await startBackend(routes());
  const subscribe = backend.routes['/subscribe'];
  backend.routes['/subscribe'] = (req) => (req.body.channel.startsWith('expdown:')
    ? { json: { result: { expire_at: Math.floor(Date.now() / 1000) + 1 } } }
    : subscribe(req));
  backend.routes['/subrefresh'] = ({ body }) => {
    if (body.channel === 'exp:err') return { json: { error: { code: 4012, message: 'no more' } } };
    if (body.channel === 'exp:bye') return { json: { disconnect: { code: 4512, reason: 'bye' } } };
    return { delay: 1500, json: { result: { expire_at: Math.floor(Date.now() / 1000) + 600 } } };
  };
  const toml = (await config(backend, `
[proxy.subrefresh]
endpoint = "${backend.url('/subrefresh')}"
timeout = 0.3
[namespace.exp]
subscribe_proxy = "subscribe"
sub_refresh_proxy = "subrefresh"
[namespace.expdown]
subscribe_proxy = "subscribe"
sub_refresh_proxy = "down"
[api]
key = "${KEY}"
`)).replace('connect_proxy = "connect"', 'connect_proxy = "connect"\nping_interval = 1');
  const server = await startWithConfig(toml);
  const c = client(server, { user: 'gil' });
  const codes = {};
  const pubs = {};
  const subs = {};
  try {
    await connected(c);
    for (const ch of ['exp:err', 'exp:bye', 'exp:slow', 'expdown:a']) {
      const sub = c.newSubscription(ch);
      codes[ch] = [];
      pubs[ch] = [];
      sub.on('publication', (ctx) => pubs[ch].push(ctx.data));
      await subscribed(sub);
      sub.on('subscribing', (ctx) => codes[ch].push(ctx.code));
      subs[ch] = sub;
    }
    for (const ch of ['exp:err', 'exp:bye']) {
      await waitFor(() => codes[ch].includes(2501), 8000, () => `${ch}: unsubscribed with 2501 (codes ${codes[ch]})`);
    }
    for (const result of ['timeout', 'unreachable']) {
      await eventually(async () => metric(await metricsText(server), 'ringcast_proxy_requests_total', { proxy: result === 'timeout' ? 'subrefresh' : 'down', result }) >= 1, 8000, `a sub_refresh counted as ${result}`);
    }
    for (const ch of ['exp:slow', 'expdown:a']) {
      await api(server, KEY, 'publish', { channel: ch, data: { still: ch } });
      await waitFor(() => pubs[ch].some((d) => d.still === ch), 5000, `${ch} still gets publications after its refresh failed`);
      assert.deepEqual(codes[ch], [], `${ch} was not unsubscribed`);
      assert.equal(subs[ch].state, 'subscribed');
    }
    assert.equal(c.state, 'connected', 'a disconnect answer to a sub_refresh ends only the subscription');
  } finally {
    c.disconnect();
    await server.stop();
    await backend.stop();
  }
});

test('connect proxy on the HTTP transports: uni_http_stream asks the backend with its transport name and forwards the request\'s headers', async () => {
  const backend = await startBackend(routes());
  const toml = (await config(backend)).replace('[client]', '[transports]\nuni_http_stream = true\n[client]');
  const server = await startWithConfig(toml);
  const ac = new AbortController();
  try {
    const res = await fetch(`http://${server.addr}/connection/uni_http_stream`, {
      method: 'POST',
      headers: { 'X-Test-Auth': 'from-curl', 'content-type': 'application/json' },
      body: JSON.stringify({ data: { user: 'zed' } }),
      signal: ac.signal,
    });
    assert.equal(res.status, 200);
    const reader = res.body.getReader();
    let text = '';
    while (!text.includes('\n')) {
      const { value, done } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString();
    }
    const first = JSON.parse(text.split('\n')[0]);
    assert.ok(first.connect, text);
    assert.deepEqual(first.connect.data, { welcome: first.connect.client }, 'the connect push carries the backend data');
    const [req] = backend.calls('/connect');
    assert.deepEqual({ transport: req.body.transport, data: req.body.data, auth: req.headers['x-test-auth'] }, { transport: 'uni_http_stream', data: { user: 'zed' }, auth: 'from-curl' });
  } finally {
    ac.abort();
    await server.stop();
    await backend.stop();
  }
});

test('publish and rpc proxies failing: a 502, a timeout or a dead backend is error 100 for that call and the connection goes on; a disconnect answer closes it', async () => {
  const backend = await startBackend(routes());
  const server = await startWithConfig(await config(backend));
  const c = client(server, { user: 'gil' });
  try {
    await connected(c);
    const room = c.newSubscription('chat:pub');
    await subscribed(room);
    await assert.rejects(room.publish({ mode: 'fail' }), (e) => e.code === 100, 'a 502 from the backend');
    const down = c.newSubscription('downpub:x');
    await subscribed(down);
    await assert.rejects(down.publish({ n: 1 }), (e) => e.code === 100, 'publish proxy down');
    const slow = c.newSubscription('slowpub:x');
    await subscribed(slow);
    await assert.rejects(slow.publish({ n: 1 }), (e) => e.code === 100, 'publish proxy timing out');
    assert.deepEqual((await room.history({ limit: 10 })).publications, [], 'nothing failed was published');
    assert.equal(c.state, 'connected');

    // The backend's disconnect, from the rpc proxy and from the publish proxy.
    let closed = new Promise((resolve) => c.once('disconnected', resolve));
    c.rpc('bye', {}).catch(() => {});
    let ctx = await closed;
    assert.deepEqual({ code: ctx.code, reason: ctx.reason }, { code: 4504, reason: 'rpc says bye' });
    await connected(c);
    const again = c.getSubscription('chat:pub');
    await waitFor(() => again.state === 'subscribed', 5000, 'resubscribed');
    closed = new Promise((resolve) => c.once('disconnected', resolve));
    again.publish({ mode: 'bye' }).catch(() => {});
    ctx = await closed;
    assert.deepEqual({ code: ctx.code, reason: ctx.reason }, { code: 4503, reason: 'no publishing' });
  } finally {
    c.disconnect();
    await server.stop();
    await backend.stop();
  }
});

test('commands in the same frame as a proxied connect wait for it and then run in order', async () => {
  const backend = await startBackend(routes());
  backend.routes['/connect'] = ({ body }) => ({ delay: 200, json: { result: { user: body.data.user } } });
  const server = await startWithConfig(await config(backend));
  let raw;
  try {
    raw = await openRaw(server.url);
    raw.send([
      { id: 1, connect: { data: { user: 'hal' } } },
      { id: 2, subscribe: { channel: 'chat:batched' } },
      { id: 3, rpc: { method: 'echo', data: { x: 1 } } },
    ]);
    const [connect, subscribe, rpc] = [await raw.reply(1), await raw.reply(2), await raw.reply(3)];
    assert.ok(connect.connect?.client, JSON.stringify(connect));
    assert.deepEqual(subscribe.subscribe?.data, { hello: 'chat:batched' });
    assert.equal(rpc.rpc?.data?.user, 'hal');
    assert.equal(raw.lines.findIndex((r) => r.id === 1), 0, 'the connect reply first');
  } finally {
    raw?.terminate();
    await server.stop();
    await backend.stop();
  }
});
