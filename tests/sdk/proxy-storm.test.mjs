// A connect storm through the connect proxy, with raw WebSocket clients
// (`ws`, Centrifugo's JSON protocol by hand) and the Node backend
// (backend.mjs):
//
// 1. 10,000 clients send `connect` at once to a proxy with max_in_flight = 8
//    (default max_queue 10,000): every one is admitted, the backend never
//    sees more than 8 connections nor more than 8 requests at once, and
//    /metrics counts 10,000 ok calls.
// 2. A burst of 1,000 against max_queue = 100 with a slow backend (500 ms
//    an answer): what does not fit is refused at once (error 100, counted
//    as overloaded), everything queued is admitted, every client gets an
//    answer, and the server stays healthy and serves the next client.
//
// Client sockets come from 127.0.0.2 and up (`localAddress`, 1,000 each) so
// no source address runs short of ports. About 20 s in all.
//
//   cd tests/sdk && RINGCAST_BIN=../../target/debug/ringcast \
//     node --test --test-concurrency=1 proxy-storm.test.mjs
//   PROXY_STORM_CLIENTS=2000 ...   a smaller first storm
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startBackend } from './backend.mjs';
import { eventually, health, startWithConfig, waitFor } from './harness.mjs';

const N = Number(process.env.PROXY_STORM_CLIENTS || 10000);
const PER_SOURCE = 1000;

function toml(backend, { name, maxInFlight, maxQueue, timeout }) {
  return `
[client]
connect_proxy = "${name}"
[proxy.${name}]
endpoint = "${backend.url('/connect')}"
timeout = ${timeout}
max_in_flight = ${maxInFlight}
${maxQueue === undefined ? '' : `max_queue = ${maxQueue}`}
`;
}

/// Opens `n` WebSockets to `url` from 127.0.0.`first`, 127.0.0.`first+1`,
/// ... (PER_SOURCE each); resolves with them once all are open.
async function openClients(url, n, first, ms) {
  const clients = [];
  let open = 0;
  const failed = [];
  for (let i = 0; i < n; i++) {
    const ws = new WebSocket(url, {
      localAddress: `127.0.0.${first + Math.floor(i / PER_SOURCE)}`,
      perMessageDeflate: false,
      handshakeTimeout: ms,
    });
    ws.on('open', () => open++);
    ws.on('error', (e) => failed.push(e.message));
    clients.push(ws);
  }
  await waitFor(() => open + failed.length === n, ms, () => `${n} sockets open (${open} open, ${failed.length} failed)`);
  assert.deepEqual(failed.slice(0, 5), [], `${failed.length} sockets failed to open`);
  return clients;
}

/// Sends every client `connect` (user u<i>) in one go; `answers[i]` is set
/// to { ok, error, ms } when the reply to id 1 arrives.
function connectAll(clients) {
  const answers = new Array(clients.length);
  let answered = 0;
  const sent = performance.now();
  clients.forEach((ws, i) => {
    ws.on('message', (buf) => {
      for (const line of buf.toString().split('\n')) {
        if (!line) continue;
        const m = JSON.parse(line);
        if (m.id !== 1 || answers[i]) continue;
        answers[i] = { ok: !!m.connect?.client, error: m.error, ms: performance.now() - sent };
        answered++;
      }
    });
  });
  for (let i = 0; i < clients.length; i++) {
    clients[i].send(JSON.stringify({ id: 1, connect: { data: { user: `u${i}` } } }));
  }
  return { answers, answered: () => answered, sent };
}

/// Closes every client and waits for the sockets to be gone.
async function closeAll(clients) {
  let closed = 0;
  for (const ws of clients) {
    if (ws.readyState === WebSocket.CLOSED) closed++;
    else {
      ws.once('close', () => closed++);
      ws.terminate();
    }
  }
  await waitFor(() => closed === clients.length, 10000, () => `${clients.length} clients closed (${closed})`);
}

async function metrics(server) {
  return (await fetch(`http://${server.apiAddr}/metrics`)).text();
}

function metric(text, name, labels) {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(',');
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${want}} `));
  return line ? Number(line.split(' ').pop()) : undefined;
}

function summary(answers) {
  const ok = answers.filter((a) => a?.ok).length;
  const codes = {};
  for (const a of answers) if (a?.error) codes[a.error.code] = (codes[a.error.code] ?? 0) + 1;
  return { ok, codes, missing: answers.filter((a) => !a).length };
}

test(`connect storm: ${N} clients through a connect proxy with max_in_flight = 8, all admitted over at most 8 backend connections`, { timeout: 60000 }, async () => {
  const backend = await startBackend({
    // Every 4th answer takes a few ms, so requests overlap and
    // max_in_flight is what bounds them (answered at once, the backend
    // would take them one by one and never have 8 open).
    '/connect': ({ body }) => ({
      delay: Number(body.data.user.slice(1)) % 4 === 0 ? 3 : 0,
      json: { result: { user: body.data.user } },
    }),
  });
  // The timeout (queueing included) is well above what the storm takes: ~3 s
  // on a release build, up to ~9 s on a debug build on a busy 2-core machine.
  const server = await startWithConfig(toml(backend, { name: 'storm', maxInFlight: 8, timeout: 20 }), ['--shards', '2']);
  let clients = [];
  try {
    const t0 = performance.now();
    clients = await openClients(server.url, N, 2, 30000);
    const opened = performance.now();
    const { answers, answered } = connectAll(clients);
    await waitFor(() => answered() === N, 30000, () => `${N} connect replies (${JSON.stringify(summary(answers))}, backend peak ${backend.peak}, sockets ${backend.socketsSeen})`);
    const took = performance.now() - opened;
    const s = summary(answers);
    console.log(`proxy storm: ${N} sockets open in ${Math.round(opened - t0)} ms, all connects answered in ${Math.round(took)} ms `
      + `(slowest ${Math.round(Math.max(...answers.map((a) => a.ms)))} ms); backend: ${backend.requests.length} requests, `
      + `peak ${backend.peak} open, ${backend.socketsSeen} connections`);
    assert.deepEqual(s, { ok: N, codes: {}, missing: 0 }, 'every client connected');
    assert.ok(took < 30000, `connected within 30 s (${took} ms)`);
    assert.equal(backend.calls('/connect').length, N, 'one proxy call per client');
    assert.ok(backend.socketsSeen <= 8, `the backend saw ${backend.socketsSeen} connections (max_in_flight 8)`);
    assert.ok(backend.peak <= 8, `the backend had ${backend.peak} requests open at once (max_in_flight 8)`);
    const users = new Set(backend.requests.map((r) => r.body.data.user));
    assert.equal(users.size, N, 'every client asked once');
    const text = await metrics(server);
    assert.equal(metric(text, 'ringcast_proxy_requests_total', { proxy: 'storm', result: 'ok' }), N);
    for (const result of ['status', 'timeout', 'unreachable', 'overloaded']) {
      assert.equal(metric(text, 'ringcast_proxy_requests_total', { proxy: 'storm', result }), 0, result);
    }
    assert.equal(metric(text, 'ringcast_proxy_pending', { proxy: 'storm' }), 0);
  } finally {
    await closeAll(clients);
    await server.stop();
    await backend.stop();
  }
});

test('connect storm beyond max_queue = 100: the overflow gets error 100 at once (overloaded), the queued are admitted, every client is answered, the server stays healthy', { timeout: 25000 }, async () => {
  const M = 1000;
  const DELAY = 500; // each backend answer: 108 queued take ~7 s at 8 in flight
  const backend = await startBackend({
    '/connect': ({ body }) => ({ delay: DELAY, json: { result: { user: body.data.user } } }),
  });
  const server = await startWithConfig(toml(backend, { name: 'small', maxInFlight: 8, maxQueue: 100, timeout: 15 }), ['--shards', '2']);
  let clients = [];
  try {
    // Other source addresses than the first test's.
    clients = await openClients(server.url, M, 2 + Math.ceil(N / PER_SOURCE), 20000);
    const { answers, answered } = connectAll(clients);
    await waitFor(() => answered() === M, 20000, () => `${M} connect replies (${JSON.stringify(summary(answers))})`);
    const s = summary(answers);
    const refused = answers.filter((a) => a.error);
    const admitted = answers.filter((a) => a.ok);
    const slowestRefusal = Math.max(...refused.map((a) => a.ms));
    const firstAdmission = Math.min(...admitted.map((a) => a.ms));
    console.log(`proxy overflow: ${M} clients: ${JSON.stringify(s)}; refusals within ${Math.round(slowestRefusal)} ms, `
      + `admissions from ${Math.round(firstAdmission)} to ${Math.round(Math.max(...admitted.map((a) => a.ms)))} ms; backend peak ${backend.peak}, ${backend.socketsSeen} connections`);
    assert.equal(s.missing, 0, 'every client got an answer');
    assert.deepEqual(Object.keys(s.codes), ['100'], `refusals are error 100 (${JSON.stringify(s.codes)})`);
    assert.ok(refused.every((a) => a.error.temporary === true), 'error 100 is temporary (the SDKs retry)');
    assert.equal(s.ok + refused.length, M);
    // The first 108 (8 in flight + 100 queued) all fit; little else can,
    // as the backend answers only 8 per DELAY.
    assert.ok(s.ok >= 108, `at least max_in_flight + max_queue admitted (${s.ok})`);
    assert.ok(s.ok <= 200, `the overflow was refused, not queued (${s.ok} admitted)`);
    assert.ok(slowestRefusal < DELAY && slowestRefusal < firstAdmission,
      `refused at once: the slowest refusal took ${slowestRefusal} ms, the first admission ${firstAdmission} ms, a backend answer ${DELAY} ms`);
    assert.ok(backend.peak <= 8 && backend.socketsSeen <= 8, `backend peak ${backend.peak}, ${backend.socketsSeen} connections`);

    const text = await metrics(server);
    assert.equal(metric(text, 'ringcast_proxy_requests_total', { proxy: 'small', result: 'overloaded' }), refused.length);
    assert.equal(metric(text, 'ringcast_proxy_requests_total', { proxy: 'small', result: 'ok' }), s.ok);
    assert.equal(metric(text, 'ringcast_proxy_requests_total', { proxy: 'small', result: 'timeout' }), 0);
    assert.equal(backend.calls('/connect').length, s.ok, 'no backend call for a refused client');
    assert.equal(metric(text, 'ringcast_proxy_pending', { proxy: 'small' }), 0, 'nothing left pending');

    // Healthy: /health, and a new client gets in through the proxy.
    assert.equal((await health(server)).status, 200);
    const [late] = await openClients(server.url, 1, 2 + Math.ceil(N / PER_SOURCE), 5000);
    clients.push(late);
    let r;
    late.once('message', (b) => { r = JSON.parse(b.toString().split('\n')[0]); });
    late.send(JSON.stringify({ id: 1, connect: { data: { user: 'late' } } }));
    await waitFor(() => r, 5000, 'the late client\'s connect reply');
    assert.ok(r.connect?.client, JSON.stringify(r));
    await eventually(async () => metric(await metrics(server), 'ringcast_proxy_requests_total', { proxy: 'small', result: 'ok' }) === s.ok + 1, 2000, 'the late call counted');
  } finally {
    await closeAll(clients);
    await server.stop();
    await backend.stop();
  }
});

test('a backend slower than the timeout: calls time out for the clients, but the backend never has more than max_in_flight requests or connections (a timed-out request keeps its slot until it ends)', { timeout: 30000 }, async () => {
  const backend = await startBackend({ '/connect': ({ body }) => ({ delay: 1500, json: { result: { user: body.client } } }) });
  const server = await startWithConfig(toml(backend, { name: 'slow', maxInFlight: 2, timeout: 0.5 }));
  let clients = [];
  try {
    // 30 clients, a connect every 50 ms: each call times out at 0.5 s
    // while the backend takes 1.5 s.
    clients = await openClients(`ws://${server.addr}/connection/websocket`, 30, 2, 10000);
    const answers = [];
    for (const [i, ws] of clients.entries()) {
      ws.on('message', (m) => answers.push(JSON.parse(String(m).split('\n')[0])));
      ws.send(JSON.stringify({ id: 1, connect: { data: { n: i } } }));
      await new Promise((r) => setTimeout(r, 50));
    }
    await waitFor(() => answers.length === clients.length, 10000, () => `every client answered (${answers.length})`);
    assert.ok(answers.every((a) => a.error?.code === 100 && a.error?.temporary === true), JSON.stringify(answers.slice(0, 3)));
    assert.ok(backend.peak <= 2, `backend saw ${backend.peak} requests at once`);
    assert.ok(backend.socketsSeen <= 2, `backend saw ${backend.socketsSeen} connections`);
    assert.ok(backend.requests.length < clients.length, `calls with no time left were not sent (${backend.requests.length} sent)`);
    const text = await metrics(server);
    assert.equal(metric(text, 'ringcast_proxy_requests_total', { proxy: 'slow', result: 'timeout' }), clients.length);
  } finally {
    await closeAll(clients);
    await server.stop();
    await backend.stop();
  }
});
