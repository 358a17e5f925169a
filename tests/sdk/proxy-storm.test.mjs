// A connect storm through the connect proxy, with raw client-protocol
// connections (harness openRaw: Centrifugo's JSON protocol by hand) and the Node backend
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
import { startBackend } from './backend.mjs';
import { eventually, health, openRaw, startWithConfig, waitFor } from './harness.mjs';

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

/// Opens `n` raw client-protocol connections (harness openRaw) to `url`
/// from 127.0.0.`first`, 127.0.0.`first+1`, ... (PER_SOURCE each);
/// resolves with them once all are open.
async function openClients(url, n, first, ms) {
  let open = 0;
  const failed = [];
  const clients = await Promise.all(Array.from({ length: n }, (_, i) => openRaw(url, {
    localAddress: `127.0.0.${first + Math.floor(i / PER_SOURCE)}`,
    ms,
  }).then((c) => { open++; return c; }, (e) => { failed.push(e.message); return null; })));
  // (openRaw's own handshake timeout bounds the wait: every promise settles.)
  if (failed.length) for (const c of clients) c?.terminate();
  assert.deepEqual(failed.slice(0, 5), [], `${failed.length} of ${n} sockets failed to open (${open} open)`);
  return clients;
}

/// Sends every client `connect` (user u<i>) in one go; `answers[i]` is set
/// to { ok, error, order, backendAnswered } when the reply to id 1 arrives:
/// `order` counts the replies before it and `backendAnswered` the backend's
/// answers so far (an order of events, not a clock).
function connectAll(clients, backend, ms) {
  const answers = new Array(clients.length);
  let answered = 0;
  clients.forEach((c, i) => {
    c.reply(1, ms).then((m) => {
      answers[i] = { ok: !!m.connect?.client, error: m.error, order: answered, backendAnswered: backend.answered };
      answered++;
    }, () => {});
  });
  for (let i = 0; i < clients.length; i++) clients[i].send({ id: 1, connect: { data: { user: `u${i}` } } });
  return { answers, answered: () => answered };
}

/// Closes every client and waits for the sockets to be gone.
async function closeAll(clients) {
  for (const c of clients) c.terminate();
  await Promise.all(clients.map((c) => c.closed));
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
    // Every reply within 30 s: the wait's deadline, not an assert on the clock.
    const { answers, answered } = connectAll(clients, backend, 30000);
    await waitFor(() => answered() === N, 30000, () => `${N} connect replies (${JSON.stringify(summary(answers))}, backend peak ${backend.peak}, sockets ${backend.socketsSeen})`);
    const s = summary(answers);
    console.log(`proxy storm: ${N} sockets open in ${Math.round(opened - t0)} ms, all connects answered in ${Math.round(performance.now() - opened)} ms; `
      + `backend: ${backend.requests.length} requests, peak ${backend.peak} open, ${backend.socketsSeen} connections`);
    assert.deepEqual(s, { ok: N, codes: {}, missing: 0 }, 'every client connected');
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
    const { answers, answered } = connectAll(clients, backend, 20000);
    await waitFor(() => answered() === M, 20000, () => `${M} connect replies (${JSON.stringify(summary(answers))})`);
    const s = summary(answers);
    const refused = answers.filter((a) => a.error);
    const admitted = answers.filter((a) => a.ok);
    const lastRefusal = Math.max(...refused.map((a) => a.order));
    const firstAdmission = Math.min(...admitted.map((a) => a.order));
    const backendAtRefusals = Math.max(...refused.map((a) => a.backendAnswered));
    console.log(`proxy overflow: ${M} clients: ${JSON.stringify(s)}; the last refusal was reply ${lastRefusal + 1}, the first admission reply ${firstAdmission + 1}; `
      + `the backend had answered ${backendAtRefusals} calls at the last refusal; backend peak ${backend.peak}, ${backend.socketsSeen} connections`);
    assert.equal(s.missing, 0, 'every client got an answer');
    assert.deepEqual(Object.keys(s.codes), ['100'], `refusals are error 100 (${JSON.stringify(s.codes)})`);
    assert.ok(refused.every((a) => a.error.temporary === true), 'error 100 is temporary (the SDKs retry)');
    assert.equal(s.ok + refused.length, M);
    // The first 108 (8 in flight + 100 queued) all fit; little else can,
    // as the backend answers only 8 per DELAY.
    assert.ok(s.ok >= 108, `at least max_in_flight + max_queue admitted (${s.ok})`);
    assert.ok(s.ok <= 200, `the overflow was refused, not queued (${s.ok} admitted)`);
    // Refused at once: every refusal came before the backend answered any
    // call (each answer takes DELAY), so before any admission.
    assert.equal(backendAtRefusals, 0, `refused at once: the backend had answered ${backendAtRefusals} calls at the last refusal`);
    assert.ok(lastRefusal < firstAdmission, `every refusal before the first admission (last refusal reply ${lastRefusal + 1}, first admission reply ${firstAdmission + 1})`);
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
    late.send({ id: 1, connect: { data: { user: 'late' } } });
    const r = await late.reply(1, 5000);
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
    // while the backend takes 1.5 s. (The 50 ms pause paces the calls on
    // purpose, so that some find no time left; it waits for nothing.)
    clients = await openClients(`ws://${server.addr}/connection/websocket`, 30, 2, 10000);
    const replies = [];
    for (const [i, c] of clients.entries()) {
      c.send({ id: 1, connect: { data: { n: i } } });
      replies.push(c.reply(1, 10000));
      await new Promise((r) => setTimeout(r, 50));
    }
    const answers = await Promise.all(replies);
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
