// The client protocol without WebSocket: centrifuge-js over HTTP-streaming
// and SSE (with /emulation carrying its later commands), its fallback
// from one transport to the next, and the unidirectional transports read by
// plain HTTP and WebSocket clients.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawn } from 'node:child_process';
import { Centrifuge } from 'centrifuge';
import { EventSource } from 'eventsource';
import WebSocket from 'ws';
import { startWithConfig, waitFor, api, eventually, openRaw } from './harness.mjs';
import { startCluster } from './nodes.mjs';

const KEY = 'transports-test-key';
let server;

const CONFIG = `
[client]
insecure = true
server_subscriptions = ["uni:news"]
[api]
key = "${KEY}"
[transports]
http_stream = true
sse = true
uni_sse = true
uni_http_stream = true
uni_websocket = true
[channel]
presence = true
history_size = 100
history_ttl = 300
force_recovery = true
[namespace.uni]
history_size = 100
history_ttl = 300
force_recovery = true
`;

before(async () => {
  server = await startWithConfig(CONFIG, ['--shards', '2']);
});

after(async () => {
  await server.stop();
});

const base = () => `http://${server.addr}`;

function emulated(transport, extra = {}) {
  const endpoint = `${base()}/connection/${transport}`;
  return new Centrifuge([{ transport, endpoint }], {
    emulationEndpoint: `${base()}/emulation`,
    fetch,
    readableStream: ReadableStream,
    eventsource: EventSource,
    websocket: WebSocket,
    minReconnectDelay: 100,
    maxReconnectDelay: 300,
    ...extra,
  });
}

/// Everything the SDK's subscription API offers, over one transport.
async function fullFlow(transport) {
  const channel = `room-${transport}`;
  const c = emulated(transport);
  const connected = [];
  c.on('connected', (ctx) => connected.push(ctx));
  const got = [];
  const subscribed = [];
  const sub = c.newSubscription(channel);
  sub.on('publication', (ctx) => got.push(ctx.data.n));
  sub.on('subscribed', (ctx) => subscribed.push({ wasRecovering: ctx.wasRecovering, recovered: ctx.recovered }));
  sub.subscribe();
  c.connect();
  try {
    await waitFor(() => subscribed.length === 1, 5000, `${transport}: subscribed`);
    assert.equal(connected[0].transport, transport);
    // /metrics counts the connection under its transport.
    const metrics = await (await fetch(`http://${server.apiAddr}/metrics`)).text();
    const open = metrics.split('\n').filter((l) => l.startsWith('ringcast_transport_connections{')
      && l.includes(`transport="${transport}"`)).reduce((n, l) => n + Number(l.split(' ')[1]), 0);
    assert.equal(open, 1, metrics);

    // 100 publications from the server API arrive in order.
    for (let n = 0; n < 100; n++) {
      await api(server, KEY, 'publish', { channel, data: { n } });
    }
    await waitFor(() => got.length === 100, 10000, () => `${transport}: 100 publications (got ${got.length})`);
    assert.deepEqual(got, [...Array(100).keys()]);

    // Client publish, presence and history ride on /emulation.
    await sub.publish({ n: 100 });
    await waitFor(() => got.length === 101, 5000, `${transport}: own publication`);
    const presence = await sub.presence();
    assert.ok(Object.values(presence.clients).some((p) => p.client === connected[0].client));
    const history = await sub.history({ limit: 5, reverse: true });
    assert.deepEqual(history.publications.map((p) => p.data.n), [100, 99, 98, 97, 96]);

    // Knocked off, it comes back over the same transport and recovers
    // exactly what it missed.
    await api(server, KEY, 'disconnect', { user: '', client: connected[0].client, disconnect: { code: 3011, reason: 'test' } });
    await waitFor(() => c.state !== 'connected', 5000, `${transport}: disconnect`);
    for (let n = 101; n < 106; n++) {
      await api(server, KEY, 'publish', { channel, data: { n } });
    }
    await waitFor(() => subscribed.length === 2, 10000, `${transport}: resubscribed`);
    await waitFor(() => got.length === 106, 5000, () => `${transport}: recovered (got ${got.length})`);
    assert.deepEqual(got.slice(101), [101, 102, 103, 104, 105]);
    assert.deepEqual(subscribed[1], { wasRecovering: true, recovered: true });
    assert.equal(connected[1].transport, transport);
    assert.notEqual(connected[1].client, connected[0].client);
  } finally {
    c.disconnect();
  }
}

test('centrifuge-js over http_stream: publications in order, publish, presence, history, recovery', async () => {
  await fullFlow('http_stream');
});

test('centrifuge-js over SSE: publications in order, publish, presence, history, recovery', async () => {
  await fullFlow('sse');
});

test('a client falls back from WebSocket to http_stream, and to SSE when that is off too', async () => {
  const toml = (extra) => CONFIG.replace('[transports]', `[transports]\n${extra}`)
    .replace('http_stream = true\n', '').replace('sse = true\n', '');
  const noWs = await startWithConfig(toml('websocket = false\nhttp_stream = true\nsse = true'));
  const onlySse = await startWithConfig(toml('websocket = false\nhttp_stream = false\nsse = true'));
  try {
    // A transport that is off answers 404, and the client moves on.
    const off = await fetch(`http://${onlySse.addr}/connection/http_stream`, { method: 'POST', body: '{}' });
    assert.equal(off.status, 404);
    assert.equal(await off.text(), 'transport not enabled');
    for (const [srv, want] of [[noWs, 'http_stream'], [onlySse, 'sse']]) {
      const b = `http://${srv.addr}`;
      const c = new Centrifuge([
        { transport: 'websocket', endpoint: `ws://${srv.addr}/connection/websocket` },
        { transport: 'http_stream', endpoint: `${b}/connection/http_stream` },
        { transport: 'sse', endpoint: `${b}/connection/sse` },
      ], {
        emulationEndpoint: `${b}/emulation`,
        websocket: WebSocket, fetch, readableStream: ReadableStream, eventsource: EventSource,
        minReconnectDelay: 50, maxReconnectDelay: 100,
      });
      let transport = null;
      c.on('connected', (ctx) => { transport = ctx.transport; });
      const got = [];
      const sub = c.newSubscription('fallback');
      sub.on('publication', (ctx) => got.push(ctx.data));
      let subscribed = false;
      sub.on('subscribed', () => { subscribed = true; });
      sub.subscribe();
      c.connect();
      try {
        await waitFor(() => subscribed, 10000, `fallback to ${want}`);
        assert.equal(transport, want);
        await api(srv, KEY, 'publish', { channel: 'fallback', data: { via: want } });
        await waitFor(() => got.length === 1, 5000, `publication over ${want}`);
      } finally {
        c.disconnect();
      }
    }
  } finally {
    await noWs.stop();
    await onlySse.stop();
  }
});

/// Reads a streamed HTTP response, calling `onText` with everything so far.
function stream(method, path, body, onText) {
  const headers = body ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {};
  const req = http.request(`${base()}${path}`, { method, headers });
  let text = '';
  const done = new Promise((resolve, reject) => {
    req.on('response', (res) => {
      req.status = res.statusCode;
      req.headers = res.headers;
      res.setEncoding('utf8');
      res.on('data', (chunk) => { text += chunk; onText(text); });
      res.on('end', resolve);
      res.on('error', resolve);
    });
    req.on('error', reject);
  });
  if (body) req.write(body);
  req.end();
  return { req, done, text: () => text };
}

test('uni_http_stream and uni_sse: a connect push with the server-side subscription, then bare pushes', async () => {
  const ndjson = stream('POST', '/connection/uni_http_stream', '{}', () => {});
  const sse = stream('GET', `/connection/uni_sse?cf_connect=${encodeURIComponent('{}')}`, null, () => {});
  try {
    const lines = () => ndjson.text().split('\n').filter(Boolean).map((l) => JSON.parse(l));
    const events = () => sse.text().split('\n\n').filter((e) => e.startsWith('data: '))
      .map((e) => JSON.parse(e.slice(6)));
    await waitFor(() => lines().length === 1 && events().length === 1, 5000, 'connect pushes');
    assert.equal(ndjson.req.headers['transfer-encoding'], 'chunked');
    assert.match(sse.req.headers['content-type'], /^text\/event-stream/);
    for (const got of [lines()[0], events()[0]]) {
      assert.ok(got.connect.client, JSON.stringify(got));
      assert.ok(got.connect.session);
      assert.equal(got.connect.pong, undefined, 'unidirectional clients are not asked for pongs');
      assert.deepEqual(Object.keys(got.connect.subs), ['uni:news']);
    }
    for (let n = 0; n < 20; n++) {
      await api(server, KEY, 'publish', { channel: 'uni:news', data: { n } });
    }
    await waitFor(() => lines().length === 21 && events().length === 21, 5000, 'publications');
    for (const got of [lines(), events()]) {
      assert.deepEqual(got.slice(1).map((p) => [p.channel, p.pub.data.n, Number(p.pub.offset)]),
        [...Array(20).keys()].map((n) => ['uni:news', n, n + 1 + got[0].connect.subs['uni:news'].offset]));
    }
    // A server-side disconnect ends both streams with a disconnect push.
    for (const got of [lines()[0], events()[0]]) {
      await api(server, KEY, 'disconnect', { user: '', client: got.connect.client, disconnect: { code: 3503, reason: 'bye' } });
    }
    await Promise.all([ndjson.done, sse.done]);
    assert.deepEqual(lines().at(-1), { disconnect: { code: 3503, reason: 'bye' } });
    assert.deepEqual(events().at(-1), { disconnect: { code: 3503, reason: 'bye' } });
  } finally {
    ndjson.req.destroy();
    sse.req.destroy();
  }
});

test('uni_sse with a browser-style EventSource, and uni_websocket with a plain WebSocket client', async () => {
  const es = new EventSource(`${base()}/connection/uni_sse?cf_connect=${encodeURIComponent('{}')}`);
  const esGot = [];
  es.onmessage = (e) => esGot.push(JSON.parse(e.data));
  const uni = await openRaw(`ws://${server.addr}/connection/uni_websocket`);
  uni.send({});
  const wsGot = uni.lines;
  try {
    await waitFor(() => esGot.length === 1 && wsGot.length === 1, 5000, 'connect pushes');
    await api(server, KEY, 'publish', { channel: 'uni:news', data: { hello: 'uni' } });
    await waitFor(() => esGot.length === 2 && wsGot.length === 2, 5000, 'the publication');
    for (const got of [esGot, wsGot]) {
      assert.ok(got[0].connect.client);
      assert.equal(got[1].channel, 'uni:news');
      assert.deepEqual(got[1].pub.data, { hello: 'uni' });
    }
  } finally {
    es.close();
    uni.close();
  }
});

test('bad requests get clear statuses and close codes', async () => {
  const status = async (method, path, body, headers = {}) => {
    const res = await fetch(`${base()}${path}`, { method, body, headers });
    await res.arrayBuffer();
    return res.status;
  };
  assert.equal(await status('GET', '/connection/sse'), 400, 'SSE without cf_connect');
  assert.equal(await status('GET', '/connection/http_stream'), 405);
  assert.equal(await status('POST', '/emulation', 'junk'), 400);
  assert.equal(await status('POST', '/emulation', JSON.stringify({ session: '0.x', node: 'other', data: '' })), 404);
  assert.equal(await status('POST', '/emulation', 'x'.repeat(70 * 1024)), 413);
  assert.equal(await status('OPTIONS', '/emulation', undefined, { origin: 'http://page.test' }), 204);
  assert.equal(await status('POST', '/connection/nothing', '{}'), 405, 'not a transport path: the upgrade port says so');
  // A body sent without a length (chunked) is refused, not guessed at.
  const chunked = await new Promise((resolve, reject) => {
    const req = http.request(`${base()}/connection/http_stream`, { method: 'POST' }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('error', reject);
    req.write('{"id":1,"connect":{}}');
    req.end();
  });
  assert.equal(chunked, 411);

  // A junk first command ends the stream with a bad-request disconnect push.
  const junk = stream('POST', '/connection/http_stream', 'not json', () => {});
  await junk.done;
  assert.deepEqual(JSON.parse(junk.text().trim()), { push: { disconnect: { code: 3501, reason: 'bad request' } } });
  // A uni connect request that is not an object: the same.
  const uniJunk = stream('POST', '/connection/uni_http_stream', '[1]', () => {});
  await uniJunk.done;
  assert.deepEqual(JSON.parse(uniJunk.text().trim()), { disconnect: { code: 3501, reason: 'bad request' } });
});

test('behind a balancer: /emulation that lands on another node reaches the session over Redis', { timeout: 30000 }, async () => {
  const cl = await startCluster(CONFIG, { name: 'emulation', n: 2 });
  try {
    const [A, B] = cl.nodes;
    // B must know A (its heartbeat) to route to it.
    await eventually(async () => (await api(B, KEY, 'info', {})).nodes.length === 2, 10000, 'B sees A');
    // The stream is on A, every later command goes to B's /emulation.
    const c = new Centrifuge([{ transport: 'http_stream', endpoint: `http://${A.addr}/connection/http_stream` }], {
      emulationEndpoint: `http://${B.addr}/emulation`,
      fetch, readableStream: ReadableStream, minReconnectDelay: 100, maxReconnectDelay: 300,
    });
    const got = [];
    const sub = c.newSubscription('across');
    sub.on('publication', (ctx) => got.push(ctx.data.n));
    let subscribed = false;
    sub.on('subscribed', () => { subscribed = true; });
    // Subscribed after the connect: the subscribe command rides on /emulation.
    c.connect();
    await new Promise((r) => c.once('connected', r));
    sub.subscribe();
    try {
      await waitFor(() => subscribed, 10000, 'subscribe through B');
      await sub.publish({ n: 1 });
      await api(B, KEY, 'publish', { channel: 'across', data: { n: 2 } });
      await waitFor(() => got.length === 2, 5000, 'both publications');
      assert.deepEqual(got, [1, 2]);
      const h = await sub.history({ limit: 10 });
      assert.deepEqual(h.publications.map((p) => p.data.n), [1, 2]);
    } finally {
      c.disconnect();
    }
  } finally {
    await cl.stop();
  }
});

test('permessage-deflate: negotiated with centrifuge-js (ws) when turned on, publications arrive intact and smaller; off by default', async () => {
  const channel = 'compressed';
  const data = { text: 'ringcast compresses repetitive JSON well. '.repeat(100) };
  const sent = async (srv) => {
    const m = await (await fetch(`http://${srv.apiAddr}/metrics`)).text();
    return m.split('\n').filter((l) => l.startsWith('ringcast_bytes_sent_total{'))
      .reduce((n, l) => n + Number(l.split(' ')[1]), 0);
  };
  // Off by default; on by option.
  const off = server;
  const on = await startWithConfig(CONFIG.replace('[transports]', '[transports]\nwebsocket_compression = true'));
  try {
    const results = {};
    for (const [name, srv] of [['on', on], ['off', off]]) {
      let ext = null;
      class Spy extends WebSocket {
        constructor(...a) {
          super(...a);
          this.on('upgrade', (res) => { ext = res.headers['sec-websocket-extensions'] ?? ''; });
        }
      }
      const c = new Centrifuge(`ws://${srv.addr}/connection/websocket`, { websocket: Spy });
      const got = [];
      const sub = c.newSubscription(channel);
      sub.on('publication', (ctx) => got.push(ctx.data));
      let subscribed = false;
      sub.on('subscribed', () => { subscribed = true; });
      sub.subscribe();
      c.connect();
      try {
        await waitFor(() => subscribed, 5000, `${name}: subscribed`);
        const before = await sent(srv);
        for (let i = 0; i < 20; i++) await api(srv, KEY, 'publish', { channel, data });
        await waitFor(() => got.length === 20, 5000, `${name}: publications`);
        for (const d of got) assert.deepEqual(d, data);
        results[name] = { ext, bytes: (await sent(srv)) - before };
      } finally {
        c.disconnect();
      }
    }
    const raw = JSON.stringify(data).length * 20;
    assert.match(results.on.ext, /^permessage-deflate; server_no_context_takeover; client_no_context_takeover/);
    assert.equal(results.off.ext, '');
    assert.ok(results.off.bytes >= raw, JSON.stringify({ raw, results }));
    assert.ok(results.on.bytes < raw / 10, JSON.stringify({ raw, results }));
  } finally {
    await on.stop();
  }
});

test('pings: emulated clients answer them through /emulation and stay; unidirectional ones are never asked', { timeout: 20000 }, async () => {
  const srv = await startWithConfig(CONFIG, ['--ping-interval', '1', '--pong-timeout', '0.5']);
  const b = `http://${srv.addr}`;
  const clients = ['http_stream', 'sse'].map((transport) => {
    const c = new Centrifuge([{ transport, endpoint: `${b}/connection/${transport}` }], {
      emulationEndpoint: `${b}/emulation`, fetch, readableStream: ReadableStream, eventsource: EventSource,
    });
    // A reconnect (after a 3012 no-pong) shows as a second `connecting`.
    c.connectings = [];
    c.on('connecting', (ctx) => c.connectings.push(ctx.code));
    c.connect();
    return c;
  });
  const uniReq = http.request(`${b}/connection/uni_http_stream`, { method: 'POST', headers: { 'content-length': 2 } });
  let uni = '';
  uniReq.on('response', (res) => res.on('data', (d) => { uni += d; }));
  uniReq.end('{}');
  try {
    await waitFor(() => clients.every((c) => c.state === 'connected'), 5000, 'connected');
    // Three ping rounds: the unidirectional stream has seen three `{}`.
    await waitFor(() => uni.split('\n').filter((l) => l === '{}').length >= 3, 10000, () => `3 pings on uni (got ${JSON.stringify(uni)})`);
    for (const c of clients) {
      assert.equal(c.state, 'connected');
      assert.deepEqual(c.connectings, [0], 'no 3012 (no pong) for an emulated client');
    }
    assert.ok(!uni.includes('disconnect'), uni);
  } finally {
    for (const c of clients) c.disconnect();
    uniReq.destroy();
    await srv.stop();
  }
});

test('curl reads uni_http_stream and uni_sse', async () => {
  // curl -N: no buffering; --max-time bounds each; both end when the
  // server disconnects the client after the publication.
  const run = (args) => {
    const p = spawn('curl', ['-sN', '--max-time', '10', ...args]);
    p.out = '';
    p.stdout.on('data', (d) => { p.out += d; });
    p.done = new Promise((r) => p.on('exit', r));
    return p;
  };
  const ndjson = run(['-X', 'POST', '--data-binary', '{}', `${base()}/connection/uni_http_stream`]);
  const sse = run(['-G', '--data-urlencode', 'cf_connect={}', `${base()}/connection/uni_sse`]);
  try {
    const clientOf = (text) => {
      const m = text.match(/"connect":\{"client":"([^"]+)"/);
      return m && m[1];
    };
    await waitFor(() => clientOf(ndjson.out) && clientOf(sse.out), 5000, 'connect pushes via curl');
    await api(server, KEY, 'publish', { channel: 'uni:news', data: { via: 'curl' } });
    await waitFor(() => ndjson.out.includes('"via":"curl"') && sse.out.includes('"via":"curl"'), 5000, 'the publication via curl');
    for (const p of [ndjson, sse]) {
      await api(server, KEY, 'disconnect', { user: '', client: clientOf(p.out), disconnect: { code: 3503, reason: 'bye' } });
    }
    const codes = await Promise.all([ndjson.done, sse.done]);
    assert.deepEqual(codes, [0, 0], 'curl saw both streams end cleanly (the last chunk)');
    assert.match(ndjson.out, /\{"channel":"uni:news","pub":\{"data":\{"via":"curl"\}/);
    assert.match(sse.out, /data: \{"channel":"uni:news","pub":\{"data":\{"via":"curl"\}/);
    assert.ok(ndjson.out.trim().endsWith('{"disconnect":{"code":3503,"reason":"bye"}}'), ndjson.out);
  } finally {
    ndjson.kill();
    sse.kill();
  }
});
