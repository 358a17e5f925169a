// `ringcast ws2api` against a real HTTP backend (backend.mjs): ws2api's wire
// protocol over real sockets (connect GET, message POST, close DELETE, push
// POST), the duplicate-id fix, pushes that land on another shard, and two
// nodes behind HAProxy (`balance uri`) sending a client's connection and
// the backend's pushes for it to the same node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { startBackend, deadPort } from './backend.mjs';
import { eventually, startRingcast, waitFor } from './harness.mjs';

/// ws2api's example backend (server/server.go): GET and DELETE answer `ok`,
/// a POST is answered with what it carried. Ids starting with `deny` are
/// refused, `broken` gets a 503.
function routes() {
  return {
    '*': ({ method, path: p, raw }) => {
      const id = p.split('/').pop();
      if (method === 'GET') {
        if (id.startsWith('deny')) return { text: 'ko' };
        if (id.startsWith('broken')) return { status: 503, text: 'down' };
        return { text: 'ok' };
      }
      if (method === 'DELETE') return { text: 'ok' };
      if (raw === 'silent') return { text: '' };
      if (raw.startsWith('slow')) return { delay: 200, text: `re:${raw}` };
      return { text: `re:${raw}` };
    },
  };
}

async function startWs2Api(backendUrl, args = []) {
  const s = await startRingcast(['ws2api', '--backend', backendUrl, '--port', '0', '--address', '127.0.0.1', '--no-pin', ...args]);
  s.ws = (id) => `ws://${s.addr}/${id}`;
  s.push = (id, body) => fetch(`http://${s.addr}/${id}`, { method: 'POST', body });
  return s;
}

/// Opens a WebSocket; resolves with it and the messages it will receive, or
/// rejects with the HTTP status of a refused upgrade.
function open(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const got = [];
    let shard;
    ws.on('upgrade', (res) => { shard = res.headers['x-ringcast-shard']; });
    ws.on('message', (m) => got.push(String(m)));
    ws.on('open', () => resolve({ ws, got, shard }));
    ws.on('unexpected-response', (_req, res) => reject(Object.assign(new Error(`status ${res.statusCode}`), { status: res.statusCode })));
    ws.on('error', reject);
  });
}

function closed(ws) {
  return new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: String(reason) })));
}

test('ws2api: accepted, refused (403), failed backend (502), messages answered in order, pushes, close reason and EOF, counters', async () => {
  const backend = await startBackend(routes());
  const server = await startWs2Api(backend.url('/wsoverhttp/'), ['--shards', '2']);
  try {
    const a = await open(server.ws('alice'));
    const get = backend.calls('/wsoverhttp/alice')[0];
    assert.deepEqual({ method: get.method, raw: get.raw }, { method: 'GET', raw: '' });
    await assert.rejects(open(server.ws('deny1')), (e) => e.status === 403);
    await assert.rejects(open(server.ws('broken1')), (e) => e.status === 502);

    // Messages: each a POST with the raw body; answers in the order sent,
    // though the first takes longest; an empty answer sends nothing.
    a.ws.send('slow-1');
    a.ws.send('two');
    a.ws.send('silent');
    a.ws.send('three');
    await waitFor(() => a.got.length === 3, 5000, () => `answers (${a.got})`);
    assert.deepEqual(a.got, ['re:slow-1', 're:two', 're:three']);
    const posts = backend.calls('/wsoverhttp/alice').filter((r) => r.method === 'POST').map((r) => r.raw);
    assert.deepEqual(posts.sort(), ['silent', 'slow-1', 'three', 'two']);

    // Pushes from the backend: delivered; an unknown id is 404; a body that
    // is not UTF-8 is refused without touching the client.
    let r = await server.push('alice', 'hello from the backend');
    assert.deepEqual([r.status, await r.text()], [200, 'ok']);
    await waitFor(() => a.got.length === 4, 5000, 'the push');
    assert.equal(a.got[3], 'hello from the backend');
    r = await server.push('nobody', 'x');
    assert.deepEqual([r.status, await r.text()], [404, 'not found']);
    r = await server.push('alice', Buffer.from([0xff, 0xfe]));
    assert.equal(r.status, 400);
    assert.equal(a.ws.readyState, WebSocket.OPEN);

    // Binary messages are not part of the protocol: closed with 1003.
    const bin = await open(server.ws('binary'));
    const binClosed = closed(bin.ws);
    bin.ws.send(Buffer.from([1, 2, 3]));
    assert.equal((await binClosed).code, 1003);

    // Close with a reason: DELETE carries it. An abrupt end: `EOF`.
    const c = closed(a.ws);
    a.ws.close(1000, 'user left');
    await c;
    await waitFor(() => backend.calls('/wsoverhttp/alice').some((x) => x.method === 'DELETE'), 5000, 'DELETE alice');
    assert.equal(backend.calls('/wsoverhttp/alice').find((x) => x.method === 'DELETE').raw, 'user left');
    const b = await open(server.ws('bob'));
    b.ws.terminate();
    await waitFor(() => backend.calls('/wsoverhttp/bob').some((x) => x.method === 'DELETE'), 5000, 'DELETE bob');
    assert.equal(backend.calls('/wsoverhttp/bob').find((x) => x.method === 'DELETE').raw, 'EOF');
    // Gone: pushes to it are 404 again.
    r = await server.push('alice', 'late');
    assert.equal(r.status, 404);

    // The counters (ws2api's names), also as Prometheus text.
    const plain = await (await fetch(`http://${server.addr}/`)).text();
    const counters = Object.fromEntries(plain.trim().split('\n').map((l) => l.split(' ')).map(([k, v]) => [k, Number(v)]));
    assert.equal(counters.connections_opened, 3, plain);
    assert.equal(counters.connections_closed, 3, plain);
    assert.equal(counters.requests_failed, 1, `the 503: ${plain}`);
    assert.equal(counters.requests_started, counters.requests_failed + counters.requests_succeeded, plain);
    const prom = await (await fetch(`http://${server.addr}/metrics`)).text();
    assert.match(prom, /^ringcast_ws2api_requests_started_total \d+$/m);
    const lint = spawnSync('promtool', ['check', 'metrics'], { input: prom, encoding: 'utf8' });
    assert.equal(lint.status, 0, `promtool: ${lint.error ?? ''}${lint.stdout}${lint.stderr}`);
  } finally {
    await server.stop();
    await backend.stop();
  }
});

test('ws2api: a backend that is down is a 502 for connects, and a client whose message is not answered stays connected', async () => {
  const dead = await deadPort();
  const server = await startWs2Api(`http://127.0.0.1:${dead}/api/`);
  try {
    await assert.rejects(open(server.ws('x')), (e) => e.status === 502);
  } finally {
    await server.stop();
  }
  // Up for the connect, then down for the message.
  const backend = await startBackend(routes());
  const s2 = await startWs2Api(backend.url('/wsoverhttp/'));
  try {
    const a = await open(s2.ws('carol'));
    backend.routes['*'] = ({ method }) => (method === 'POST' ? { status: 500, text: 'oops' } : { text: 'ok' });
    a.ws.send('lost');
    a.ws.send('also lost');
    await waitFor(() => backend.calls('/wsoverhttp/carol').filter((r) => r.method === 'POST').length === 2, 5000, 'two POSTs');
    backend.routes = routes();
    a.ws.send('fine');
    await waitFor(() => a.got.length === 1, 5000, 'the answer after the failures');
    assert.deepEqual(a.got, ['re:fine'], 'failed answers are not sent; later ones still are, in order');
  } finally {
    await s2.stop();
    await backend.stop();
  }
});

test('ws2api: a second connection with the same id replaces the first (4409) and the first one\'s close neither reaches the backend nor unregisters the second', async () => {
  const backend = await startBackend(routes());
  const server = await startWs2Api(backend.url('/wsoverhttp/'), ['--shards', '2']);
  try {
    // Connect the same id until the two land on different shards (and
    // once on the same): both paths replace.
    for (const wantSame of [false, true]) {
      const first = await open(server.ws('dup'));
      let second;
      for (let i = 0; i < 40; i++) {
        const firstClosed = closed(first.ws);
        second = await open(server.ws('dup'));
        const why = await firstClosed;
        assert.deepEqual(why, { code: 4409, reason: 'replaced by a newer connection' });
        if ((second.shard === first.shard) === wantSame) break;
        // Not the placement wanted: start over with this one as the first.
        Object.assign(first, second);
      }
      assert.equal(second.shard === first.shard, wantSame, `placement ${wantSame ? 'same' : 'different'} shard`);
      // Pushes reach the second; the first's close sent no DELETE.
      const r = await server.push('dup', 'to the newest');
      assert.equal(r.status, 200);
      await waitFor(() => second.got.includes('to the newest'), 5000, 'push to the second');
      assert.equal(backend.calls('/wsoverhttp/dup').filter((x) => x.method === 'DELETE').length, 0, 'no DELETE for a replaced connection');
      const c = closed(second.ws);
      second.ws.close(1000, 'done');
      await c;
      await waitFor(() => backend.calls('/wsoverhttp/dup').filter((x) => x.method === 'DELETE').length === 1, 5000, 'one DELETE');
      backend.requests.length = 0;
    }
  } finally {
    await server.stop();
    await backend.stop();
  }
});

test('ws2api: pushes that land on any shard reach clients on every shard', async () => {
  const backend = await startBackend(routes());
  const server = await startWs2Api(backend.url('/wsoverhttp/'), ['--shards', '2']);
  const clients = [];
  try {
    for (let i = 0; i < 20; i++) clients.push(await open(server.ws(`c${i}`)));
    const shards = new Set(clients.map((c) => c.shard));
    assert.equal(shards.size, 2, 'clients on both shards');
    // Each push is its own TCP connection (fetch with a fresh agent), so
    // SO_REUSEPORT spreads them over the shards too.
    for (let round = 0; round < 3; round++) {
      await Promise.all(clients.map(async (c, i) => {
        const r = await fetch(`http://${server.addr}/c${i}`, { method: 'POST', body: `p${round}`, headers: { connection: 'close' } });
        assert.equal(r.status, 200);
      }));
    }
    await waitFor(() => clients.every((c) => c.got.length === 3), 5000, 'every push');
    for (const c of clients) assert.deepEqual(c.got, ['p0', 'p1', 'p2']);
  } finally {
    for (const c of clients) c.ws.terminate();
    await server.stop();
    await backend.stop();
  }
});

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

test('ws2api behind HAProxy (balance uri): a client\'s connection and the backend\'s pushes for its id go to the same node', async () => {
  const backend = await startBackend(routes());
  const nodes = [
    await startWs2Api(backend.url('/wsoverhttp/'), ['--shards', '1']),
    await startWs2Api(backend.url('/wsoverhttp/'), ['--shards', '1']),
  ];
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringcast-haproxy-'));
  const cfg = path.join(dir, 'haproxy.cfg');
  fs.writeFileSync(cfg, `
global
  maxconn 4096
defaults
  mode http
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  timeout tunnel 1h
frontend in
  bind 127.0.0.1:${port}
  default_backend ws2api
backend ws2api
  balance uri depth 1
  hash-type consistent
${nodes.map((n, i) => `  server n${i} ${n.addr}`).join('\n')}
`);
  const check = spawnSync('haproxy', ['-c', '-f', cfg], { encoding: 'utf8' });
  assert.equal(check.status, 0, `haproxy -c: ${check.stdout}${check.stderr}`);
  const haproxy = spawn('haproxy', ['-db', '-f', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
  let hlog = '';
  haproxy.stderr.on('data', (d) => { hlog += d; });
  const clients = [];
  try {
    // Up when it answers.
    clients.push(await eventually(() => open(`ws://127.0.0.1:${port}/h0`), 5000, () => `haproxy up: ${hlog}`, 100));
    for (let i = 1; i < 30; i++) clients.push(await open(`ws://127.0.0.1:${port}/h${i}`));
    const counts = await Promise.all(nodes.map(async (n) => {
      const t = await (await fetch(`http://${n.addr}/`)).text();
      return Number(/connections_opened (\d+)/.exec(t)[1]);
    }));
    assert.equal(counts[0] + counts[1], 30);
    assert.ok(counts[0] > 0 && counts[1] > 0, `both nodes have clients: ${counts}`);
    // The backend pushes through HAProxy: each id's push reaches its node.
    for (let i = 0; i < 30; i++) {
      const r = await fetch(`http://127.0.0.1:${port}/h${i}`, { method: 'POST', body: `for h${i}` });
      assert.equal(r.status, 200, `push h${i}`);
    }
    await waitFor(() => clients.every((c) => c.got.length === 1), 5000, 'every push through haproxy');
    clients.forEach((c, i) => assert.deepEqual(c.got, [`for h${i}`]));
  } finally {
    for (const c of clients) c.ws.terminate();
    haproxy.kill('SIGKILL');
    await once(haproxy, 'exit');
    fs.rmSync(dir, { recursive: true, force: true });
    for (const n of nodes) await n.stop();
    await backend.stop();
  }
});

/// ws2api's counter page as numbers.
async function counters(server) {
  const plain = await (await fetch(`http://${server.addr}/`)).text();
  return Object.fromEntries(plain.trim().split('\n').map((l) => l.split(' ')).map(([k, v]) => [k, Number(v)]));
}

/// Resolves with the process's exit, or rejects after `ms`.
function exitWithin(server, ms) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`ringcast still running ${ms} ms after SIGTERM:\n${server.log()}`)), ms);
  });
  return Promise.race([server.exited, late]).finally(() => clearTimeout(timer));
}

test('ws2api: a graceful shutdown right after clients closed still sends every queued DELETE and accepted POST before the process exits', async () => {
  const N = 30;
  // A slow backend: 150 ms per POST and DELETE, 3 at once (--max-in-flight),
  // so the 60 calls take about 3 s, and at the signal most are still queued.
  const backend = await startBackend({
    '*': ({ method, raw }) => {
      if (method === 'GET') return { text: 'ok' };
      return { delay: 150, text: method === 'POST' ? `re:${raw}` : 'ok' };
    },
  });
  const server = await startWs2Api(backend.url('/wsoverhttp/'), ['--shards', '2', '--max-in-flight', '3']);
  try {
    const clients = [];
    for (let i = 0; i < N; i++) clients.push(await open(server.ws(`s${i}`)));
    // Each client sends a message and closes at once.
    await Promise.all(clients.map((c, i) => {
      const done = closed(c.ws);
      c.ws.send(`m${i}`);
      c.ws.close(1000, `bye ${i}`);
      return done;
    }));
    // Every close has been handed to the backends thread (the counter goes
    // up as the DELETE is queued); then SIGTERM at once.
    await eventually(async () => (await counters(server)).connections_closed === N, 5000, 'the closes counted');
    const deletesAtSignal = backend.requests.filter((r) => r.method === 'DELETE').length;
    server.signal('SIGTERM');
    const exit = await exitWithin(server, 15000);
    assert.deepEqual(exit, { code: 0, signal: null }, server.log());
    assert.ok(deletesAtSignal < N, `the DELETEs were still queued at the signal (${deletesAtSignal} of ${N} had arrived)`);
    const deletes = backend.requests.filter((r) => r.method === 'DELETE');
    assert.deepEqual(deletes.map((r) => `${r.path} ${r.raw}`).sort(),
      clients.map((_, i) => `/wsoverhttp/s${i} bye ${i}`).sort(), 'every DELETE, with its reason');
    const posts = backend.requests.filter((r) => r.method === 'POST');
    assert.deepEqual(posts.map((r) => `${r.path} ${r.raw}`).sort(),
      clients.map((_, i) => `/wsoverhttp/s${i} m${i}`).sort(), 'every accepted POST');
    assert.match(server.log(), /backend calls drained.*undelivered=0/, server.log());
  } finally {
    await server.stop();
    await backend.stop();
  }
});

test('ws2api: a shutdown does not wait for the backend past --shutdown-timeout, and logs the calls it did not deliver', async () => {
  // DELETEs are never answered; 2 at once, so 2 are in flight and 4 queued.
  const backend = await startBackend({
    '*': ({ method }) => (method === 'GET' ? { text: 'ok' } : new Promise(() => {})),
  });
  const server = await startWs2Api(backend.url('/wsoverhttp/'), ['--max-in-flight', '2', '--shutdown-timeout', '1']);
  try {
    const clients = [];
    for (let i = 0; i < 6; i++) clients.push(await open(server.ws(`t${i}`)));
    await Promise.all(clients.map((c) => {
      const done = closed(c.ws);
      c.ws.close(1000, 'bye');
      return done;
    }));
    await eventually(async () => (await counters(server)).connections_closed === 6, 5000, 'the closes counted');
    await waitFor(() => backend.requests.filter((r) => r.method === 'DELETE').length === 2, 5000, 'two DELETEs in flight');
    server.signal('SIGTERM');
    // The backend never answers: without the deadline the process would
    // not exit at all. The log line below is written only when the
    // deadline fires (not a clock read here).
    const exit = await exitWithin(server, 8000);
    assert.deepEqual(exit, { code: 0, signal: null }, server.log());
    assert.match(server.log(), /backend calls not delivered by the shutdown deadline.*undelivered=6.*queued=4.*in_flight=2/, server.log());
  } finally {
    await server.stop();
    await backend.stop();
  }
});
