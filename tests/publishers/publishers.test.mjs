// The TCP publisher protocol (docs/publisher-protocol.md) end to end with the
// Node example (examples/publishers/node/publisher.mjs) against the real
// ringcast binary; a raw WebSocket subscriber (the sdk harness's openRaw,
// on tests/sdk's `ws`) checks what reaches clients.
//
//   RINGCAST_BIN=target/debug/ringcast node --test tests/publishers/
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { Publisher, PublisherError } from '../../examples/publishers/node/publisher.mjs';
// The sdk tests' harness starts the server and has the raw client.
import { openRaw, startServer as startRingcast } from '../sdk/harness.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const EXAMPLE = path.join(root, 'examples/publishers/node/publisher.mjs');
const API_KEY = 'test-publisher-key';

// ---- the server -------------------------------------------------------------

async function startServer(args = []) {
  const server = await startRingcast(['--api-key', API_KEY, ...args]);
  const [host, port] = server.publisherAddr.split(':');
  return {
    wsUrl: server.url,
    pub: { host, port: Number(port) },
    log: server.log,
    stop: server.stop,
  };
}

// ---- a raw WebSocket subscriber ------------------------------------------------

/** Connects (the harness's raw client-protocol connection), subscribes to
 * `channel` and collects its publications (`push.pub`); answers pings. */
async function openSubscriber(url, channel) {
  const raw = await openRaw(url);
  const sub = { close: () => raw.terminate() };
  try {
    raw.send({ id: 1, connect: {} });
    const c = await raw.reply(1);
    assert.ok(c.connect, JSON.stringify(c));
    raw.send({ id: 2, subscribe: { channel } });
    const s = await raw.reply(2);
    assert.ok(s.subscribe, JSON.stringify(s));
    sub.epoch = s.subscribe.epoch;
  } catch (e) {
    raw.terminate();
    throw e;
  }
  /** Resolves with the publications once there are `n`. */
  sub.wait = async (n, ms) => {
    let seen = 0;
    await raw.next((m) => m.push?.channel === channel && m.push.pub && ++seen >= n, ms, () => `${n} publications (have ${seen})`);
    return raw.lines.filter((m) => m.push?.channel === channel && m.push.pub).map((m) => m.push.pub);
  };
  return sub;
}

function checkInOrder(pubs, n) {
  assert.equal(pubs.length, n);
  for (let i = 0; i < n; i++) assert.equal(pubs[i].data.seq, i, `publication ${i} out of order`);
  const offsets = pubs.map((p) => p.offset);
  for (let i = 1; i < n; i++) assert.ok(offsets[i] > offsets[i - 1], `offset ${i} not increasing`);
  return offsets;
}

// ---- tests --------------------------------------------------------------------

let server;
const cleanup = [];

before(async () => {
  // --max-queue 0: a burst of 20,000 pushes must not cut the subscriber as slow.
  server = await startServer(['--shards', '2', '--insecure', '--max-queue', '0']);
});

after(async () => {
  for (const c of cleanup) c.close();
  await server?.stop();
});

async function subscriber(channel) {
  const s = await openSubscriber(server.wsUrl, channel);
  cleanup.push(s);
  return s;
}

async function publisher(apiKey = API_KEY) {
  const p = new Publisher({ ...server.pub, apiKey });
  cleanup.push(p);
  return p.connect();
}

test('the Node library publishes 20,000 pipelined; acks resolve in order and match the pushes', { timeout: 20000 }, async () => {
  const n = 20000;
  const sub = await subscriber('node-lib');
  const p = await publisher();
  // Every publish issued at once: 20,000 outstanding promises, one FIFO.
  const acks = await Promise.all(Array.from({ length: n }, (_, i) => p.publish('node-lib', { seq: i })));
  assert.equal(p.pending, 0);
  const ackOffsets = acks.map((a) => a.offset);
  for (let i = 1; i < n; i++) assert.ok(ackOffsets[i] > ackOffsets[i - 1]);
  // One stream: every ack carries the epoch the subscriber was given.
  assert.deepEqual(new Set(acks.map((a) => a.epoch)), new Set([sub.epoch]));
  const offsets = checkInOrder(await sub.wait(n, 15000), n);
  assert.deepEqual(offsets, ackOffsets);
  p.close();
});

test('publishMany keeps a window in flight and yields acks in order', { timeout: 20000 }, async () => {
  const n = 20000;
  const sub = await subscriber('node-many');
  const p = await publisher();
  const acks = [];
  function* items() {
    for (let i = 0; i < n; i++) {
      assert.ok(p.pending <= 256, `window exceeded: ${p.pending}`);
      yield { seq: i };
    }
  }
  for await (const ack of p.publishMany('node-many', items(), { window: 256 })) acks.push(ack);
  assert.equal(acks.length, n);
  const offsets = checkInOrder(await sub.wait(n, 15000), n);
  assert.deepEqual(offsets, acks.map((a) => a.offset));
  p.close();
});

test('the Node CLI publishes 20,000 received in order; last offset printed', { timeout: 20000 }, async () => {
  const n = 20000;
  const sub = await subscriber('node-cli');
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [EXAMPLE, '--host', server.pub.host, '--port', String(server.pub.port), '--key', API_KEY,
      '--channel', 'node-cli', '--count', String(n), '--window', '1024'],
    { timeout: 15000 },
  );
  const m = /published (\d+) messages to node-cli in .*: (\d+) msg\/s, last offset (\d+) epoch (\S+)/.exec(stdout);
  assert.ok(m, stdout);
  assert.equal(Number(m[1]), n);
  const offsets = checkInOrder(await sub.wait(n, 15000), n);
  assert.equal(offsets[n - 1], Number(m[3]));
});

test('a per-publish error rejects only its own promise; pings resolve in order', { timeout: 10000 }, async () => {
  const sub = await subscriber('node-err');
  const p = await publisher();
  const order = [];
  const track = (name, promise) =>
    promise.then(
      (v) => (order.push(name), v),
      (e) => (order.push(`${name}!`), e),
    );
  const results = await Promise.all([
    track('a', p.publish('node-err', { seq: 0 })),
    track('empty', p.publish('', { seq: -1 })),
    track('ping1', p.ping()),
    track('json', p.publish('node-err', Buffer.from('{not json'))),
    track('b', p.publish('node-err', { seq: 1 })),
    track('ping2', p.ping()),
  ]);
  assert.deepEqual(order, ['a', 'empty!', 'ping1', 'json!', 'b', 'ping2']);
  for (const e of [results[1], results[3]]) {
    assert.ok(e instanceof PublisherError);
    assert.equal(e.code, 107);
  }
  // The connection continues.
  const c = await p.publish('node-err', { seq: 2 });
  assert.ok(c.offset > results[4].offset && results[4].offset > results[0].offset);
  checkInOrder(await sub.wait(3, 5000), 3);
  p.close();
});

test('a wrong key rejects connect() with 101 and the server closes', { timeout: 10000 }, async () => {
  const p = new Publisher({ ...server.pub, apiKey: 'wrong-key' });
  await assert.rejects(p.connect(), (e) => e instanceof PublisherError && e.code === 101);
  assert.ok(p.closed);
  await assert.rejects(p.publish('x', {}), PublisherError);
});

test('publishes pending when the server closes are rejected, not left hanging', { timeout: 10000 }, async () => {
  const p = await publisher();
  const ok = p.publish('node-close', { seq: 0 });
  // An unknown frame type is a framing error: ERROR 107, then the server closes.
  const bad = p._enqueue(Buffer.from([0, 0, 0, 1, 0x42]), 0x83);
  bad.catch(() => {});
  const lost = p.publish('node-close', { seq: 1 });
  lost.catch(() => {});
  await ok;
  await assert.rejects(bad, (e) => e instanceof PublisherError && e.code === 107 && /^bad frame/.test(e.detail));
  await assert.rejects(lost, (e) => e instanceof PublisherError && /connection closed/.test(e.message));
  assert.ok(p.closed);
});
