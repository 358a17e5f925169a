// The HTTP transports in headless Chromium, with WebSocket unavailable in
// the page: centrifuge-js's browser bundle, given [websocket, http_stream,
// sse], connects over HTTP-streaming (and over SSE when the server has
// HTTP-streaming off), with its later commands on /emulation; and a plain
// browser EventSource reads the unidirectional SSE transport. The page is
// served by a local HTTP server on another port, so every request to
// ringcast is cross-origin (CORS, preflights included).
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startWithConfig, api } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const KEY = 'browser-transports-test-key';
const WAIT = { timeout: 10000, polling: 20 };

let web, origin, browser;
/// `all`: every transport on, CORS limited to the test page's origin.
/// `noStream`: HTTP-streaming off (SSE on), any origin.
/// `elsewhere`: only another origin's pages allowed.
let all, noStream, elsewhere;

const config = (transports) => `
[client]
insecure = true
server_subscriptions = ["uni:news"]
[api]
key = "${KEY}"
[transports]
${transports}
[channel]
presence = true
history_size = 200
history_ttl = 300
force_recovery = true
[namespace.uni]
history_size = 100
history_ttl = 300
force_recovery = true
`;

// `?nows` takes WebSocket away before the bundle loads (centrifuge-js looks
// for globalThis.WebSocket when a client is made); `?addr=host:port` is
// ringcast, `?channel=` the channel the client subscribes to.
const page = `<!doctype html><html><head><meta charset="utf-8"><title>ringcast transports</title>
<script>
const q = new URLSearchParams(location.search);
if (q.has('nows')) window.WebSocket = undefined;
</script>
<script src="/centrifuge.js"></script></head><body><script>
window.t = { connected: [], connecting: [], subscribed: [], got: [], errors: [] };
if (q.has('addr')) {
  const addr = q.get('addr');
  const c = new Centrifuge([
    { transport: 'websocket', endpoint: 'ws://' + addr + '/connection/websocket' },
    { transport: 'http_stream', endpoint: 'http://' + addr + '/connection/http_stream' },
    { transport: 'sse', endpoint: 'http://' + addr + '/connection/sse' },
  ], {
    emulationEndpoint: 'http://' + addr + '/emulation',
    // At least 400 ms away after a disconnect: the test publishes in that
    // time, and the client must recover those publications.
    minReconnectDelay: 400,
    maxReconnectDelay: 800,
  });
  c.on('connected', (ctx) => t.connected.push({ client: ctx.client, transport: ctx.transport }));
  c.on('connecting', (ctx) => t.connecting.push({ code: ctx.code, reason: ctx.reason }));
  c.on('error', (ctx) => t.errors.push(JSON.stringify(ctx)));
  const sub = c.newSubscription(q.get('channel'));
  sub.on('publication', (ctx) => t.got.push(ctx.data.n));
  sub.on('subscribed', (ctx) => t.subscribed.push({
    wasRecovering: ctx.wasRecovering, recovered: ctx.recovered,
    hasRecoveredPublications: ctx.hasRecoveredPublications,
  }));
  sub.subscribe();
  c.connect();
  window.client = c;
  window.sub = sub;
}
</script></body></html>`;

before(async () => {
  const bundle = fs.readFileSync(path.join(here, 'node_modules/centrifuge/dist/centrifuge.js'));
  web = http.createServer((req, res) => {
    if (req.url.startsWith('/centrifuge.js')) {
      res.writeHead(200, { 'content-type': 'application/javascript' });
      return res.end(bundle);
    }
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(page);
  });
  await new Promise((r) => web.listen(0, '127.0.0.1', r));
  origin = `http://127.0.0.1:${web.address().port}`;
  [all, noStream, elsewhere] = await Promise.all([
    startWithConfig(config(`http_stream = true\nsse = true\nuni_sse = true\nallowed_origins = ["${origin}"]`)),
    startWithConfig(config('http_stream = false\nsse = true\nuni_sse = true')),
    startWithConfig(config('http_stream = true\nsse = true\nuni_sse = true\nallowed_origins = ["http://elsewhere.test"]')),
  ]);
  browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  if (browser) await browser.close();
  if (web) web.close();
  await Promise.all([all, noStream, elsewhere].filter(Boolean).map((s) => s.stop()));
});

/// A new page at `query`, recording what it does: requests to ringcast,
/// WebSockets opened, console errors.
async function open(query) {
  const p = await browser.newPage();
  const seen = { requests: [], failed: [], websockets: [], console: [] };
  p.on('request', (r) => seen.requests.push(`${r.method()} ${r.url()}`));
  p.on('requestfailed', (r) => seen.failed.push(`${r.method()} ${r.url()} ${r.failure()?.errorText}`));
  p.on('websocket', (ws) => seen.websockets.push(ws.url()));
  p.on('console', (m) => { if (m.type() === 'error') seen.console.push(m.text()); });
  p.on('pageerror', (e) => seen.console.push(String(e)));
  await p.goto(`${origin}/?${query}`);
  return { p, seen };
}

/// Waits for `fn` (run in the page) to be truthy; on a timeout the error
/// carries `what`, the page's state and what it logged.
async function until(page, fn, arg, what) {
  try {
    await page.p.waitForFunction(fn, arg, WAIT);
  } catch (e) {
    const state = await page.p.evaluate(() => JSON.stringify({ ...window.t, got: window.t.got.length })).catch(() => '?');
    throw new Error(`timed out waiting for ${what}: ${state}\n${JSON.stringify(page.seen, null, 1)}\n${e.message}`);
  }
}

/// The subscription flow, in a page without WebSocket, against `server`;
/// `want` is the transport it must end up on.
async function flow(server, want) {
  const channel = `room-${want}`;
  const page = await open(`nows&addr=${server.addr}&channel=${channel}`);
  const { p, seen } = page;
  try {
    assert.equal(await p.evaluate(() => typeof window.WebSocket), 'undefined');
    await until(page, () => window.t.subscribed.length === 1, null, `${want}: subscribed`);
    const first = await p.evaluate(() => window.t.connected[0]);
    assert.equal(first.transport, want);

    // 100 publications from the server API arrive in order.
    for (let n = 0; n < 100; n++) {
      await api(server, KEY, 'publish', { channel, data: { n } });
    }
    await until(page, () => window.t.got.length >= 100, null, `${want}: 100 publications`);
    assert.deepEqual(await p.evaluate(() => window.t.got), [...Array(100).keys()]);

    // Publish, presence and history from the page ride on /emulation.
    await p.evaluate(() => window.sub.publish({ n: 100 }));
    await until(page, () => window.t.got.length >= 101, null, `${want}: the page's own publication`);
    assert.equal(await p.evaluate(() => window.t.got[100]), 100);
    const presence = await p.evaluate(async () => Object.values((await window.sub.presence()).clients).map((c) => c.client));
    assert.deepEqual(presence, [first.client]);
    const history = await p.evaluate(async () => (await window.sub.history({ limit: 5, reverse: true }))
      .publications.map((pub) => pub.data.n));
    assert.deepEqual(history, [100, 99, 98, 97, 96]);

    // Knocked off by the server API, the client comes back over the same
    // transport and recovers what was published while it was away.
    await api(server, KEY, 'disconnect', { user: '', client: first.client, disconnect: { code: 3011, reason: 'test' } });
    await until(page, () => window.t.connecting.some((c) => c.code === 3011), null, `${want}: disconnect 3011`);
    for (let n = 101; n < 106; n++) {
      await api(server, KEY, 'publish', { channel, data: { n } });
    }
    await until(page, () => window.t.subscribed.length === 2 && window.t.got.length >= 106, null,
      `${want}: resubscribed and recovered`);
    const t = await p.evaluate(() => window.t);
    assert.deepEqual(t.got.slice(101), [101, 102, 103, 104, 105]);
    assert.deepEqual(t.subscribed[1], { wasRecovering: true, recovered: true, hasRecoveredPublications: true },
      'the publications made while away came back in the subscribe reply');
    assert.equal(t.connected.length, 2);
    assert.equal(t.connected[1].transport, want);
    assert.notEqual(t.connected[1].client, first.client);
    // `connect called`, then the one disconnect: nothing else dropped it.
    assert.deepEqual(t.connecting.map((c) => c.code), [0, 3011]);
    assert.deepEqual(seen.websockets, [], 'no WebSocket was opened');
    return { seen, errors: t.errors.map((e) => JSON.parse(e)) };
  } finally {
    await p.close();
  }
}

test('WebSocket unavailable in the page: centrifuge-js connects over http_stream (publications in order, publish, presence, history, recovery)', async () => {
  const { seen, errors } = await flow(all, 'http_stream');
  const base = `http://${all.addr}`;
  assert.deepEqual(errors, []);
  assert.ok(!seen.requests.some((r) => r.includes('/connection/sse')), 'SSE was not needed');
  assert.ok(seen.requests.some((r) => r === `POST ${base}/emulation`), 'later commands went to /emulation');
});

test('WebSocket unavailable and the server without http_stream: it falls back to SSE (same checks)', async () => {
  const { seen, errors } = await flow(noStream, 'sse');
  const base = `http://${noStream.addr}`;
  // HTTP-streaming was tried first and failed (its CORS preflight refused):
  // the client's one error event.
  assert.deepEqual(errors, [{ type: 'transport', transport: 'http_stream', error: { code: 2, message: 'transport closed' } }]);
  assert.ok(seen.requests.includes(`POST ${base}/connection/http_stream`), JSON.stringify(seen.requests));
  assert.ok(seen.failed.some((r) => r.startsWith(`POST ${base}/connection/http_stream`)), JSON.stringify(seen.failed));
  assert.ok(seen.requests.some((r) => r.startsWith(`GET ${base}/connection/sse?cf_connect=`)));
  assert.ok(seen.requests.some((r) => r === `POST ${base}/emulation`));
});

test('a plain EventSource on uni_sse: the connect push with the server-side subscription, then bare publication pushes', async () => {
  const page = await open('');
  const { p } = page;
  try {
    const url = `http://${all.addr}/connection/uni_sse?cf_connect=${encodeURIComponent(JSON.stringify({ name: 'browser' }))}`;
    await p.evaluate((u) => {
      window.uni = [];
      window.uniErrors = 0;
      const es = new EventSource(u);
      es.onmessage = (e) => window.uni.push(JSON.parse(e.data));
      es.onerror = () => { window.uniErrors++; };
      window.es = es;
    }, url);
    await until(page, () => window.uni.length === 1, null, 'the connect push');
    const [connect] = await p.evaluate(() => window.uni);
    assert.ok(connect.connect.client, JSON.stringify(connect));
    assert.deepEqual(Object.keys(connect.connect.subs), ['uni:news']);
    const offset = Number(connect.connect.subs['uni:news'].offset || 0);

    for (let n = 0; n < 20; n++) {
      await api(all, KEY, 'publish', { channel: 'uni:news', data: { n } });
    }
    await until(page, () => window.uni.length >= 21, null, 'the publications');
    const got = await p.evaluate(() => window.uni);
    assert.equal(got.length, 21);
    for (const [i, push] of got.slice(1).entries()) {
      assert.deepEqual(Object.keys(push).sort(), ['channel', 'pub'], JSON.stringify(push));
      assert.equal(push.channel, 'uni:news');
      assert.deepEqual(push.pub.data, { n: i });
      assert.equal(Number(push.pub.offset), offset + i + 1);
    }
    assert.equal(await p.evaluate(() => window.es.readyState), 1, 'still open');
    assert.equal(await p.evaluate(() => window.uniErrors), 0);
    await p.evaluate(() => window.es.close());
  } finally {
    await p.close();
  }
});

test('a page from an origin not in allowed_origins cannot use the HTTP transports', async () => {
  const page = await open('');
  const { p } = page;
  try {
    const base = `http://${elsewhere.addr}`;
    const outcome = await p.evaluate(async (b) => {
      const attempt = (url, init) => fetch(url, init).then((r) => `status ${r.status}`, (e) => e.name);
      const es = new EventSource(`${b}/connection/uni_sse?cf_connect=%7B%7D`);
      const sse = await new Promise((resolve) => {
        es.onerror = () => resolve(es.readyState === EventSource.CLOSED ? 'closed' : 'error, retrying');
        es.onmessage = () => resolve('message');
      });
      es.close();
      return {
        // A simple request (no preflight) and a preflighted one.
        simple: await attempt(`${b}/connection/http_stream`, { method: 'POST', body: '{"id":1,"connect":{}}' }),
        preflighted: await attempt(`${b}/emulation`, {
          method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}',
        }),
        sse,
      };
    }, base);
    assert.deepEqual(outcome, { simple: 'TypeError', preflighted: 'TypeError', sse: 'closed' });
  } finally {
    await p.close();
  }
});
