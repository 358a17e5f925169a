// Fossil delta compression (`delta: 'fossil'` subscriptions) with
// centrifuge-js, JSON and protobuf builds: a delta subscriber decodes the
// same publications as a plain one, live, across recovery and over the
// Redis broker between nodes; the deltas are really used (the SDK's own
// deltaStats); where the namespace does not allow deltas the subscription
// is plain; an unknown delta type is a bad request (3501); a tags filter
// where the namespace allows none is refused (107).
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { Centrifuge } from 'centrifuge';
import { Centrifuge as ProtoCentrifuge } from 'centrifuge/build/protobuf';
import WebSocket from 'ws';
import { startWithConfig, waitFor, api, openRaw } from './harness.mjs';
import { connect, startCluster, subscribe } from './nodes.mjs';

const KEY = 'delta-test-key';
const TOML = `
[client]
insecure = true
[api]
key = "${KEY}"
[namespace.board]
history_size = 100
history_ttl = 300
force_recovery = true
allowed_delta_types = ["fossil"]
delta_publish = true
[namespace.plain]
history_size = 100
history_ttl = 300
`;

let server;
before(async () => {
  server = await startWithConfig(TOML, ['--shards', '2']);
});
after(async () => {
  await server.stop();
});

/// A scoreboard payload: about 1 KB of which publication `n` changes a few
/// bytes (and some non-ASCII text, which deltas must not cut).
const board = (n) => ({
  n,
  score: [n % 7, Math.floor(n / 3)],
  clock: `12:${String(n % 60).padStart(2, '0')}`,
  players: Array.from({ length: 20 }, (_, i) => ({ name: `plåyer ☃ ${i}`, pts: i * 10 + (i === n % 20 ? n : 0) })),
});

const client = (url, C = Centrifuge) => new C(url, { websocket: WebSocket, minReconnectDelay: 100, maxReconnectDelay: 200 });

test('a delta subscriber decodes what a plain one gets; the deltas are used', async () => {
  const c = client(server.url);
  const c2 = client(server.url);
  await connect(c);
  await connect(c2);
  const channel = 'board:live';
  const d = await subscribe(c, channel, { delta: 'fossil' });
  const p = await subscribe(c2, channel);
  for (let n = 0; n < 30; n++) await api(server, KEY, 'publish', { channel, data: board(n), tags: { n: String(n) } });
  await waitFor(() => d.pubs.length === 30 && p.pubs.length === 30, 5000, 'publications');
  assert.deepEqual(d.pubs.map((x) => x.data), p.pubs.map((x) => x.data));
  // The API's tags come with the publication, delta or not.
  const tags = Array.from({ length: 30 }, (_, n) => String(n));
  assert.deepEqual(d.pubs.map((x) => x.tags?.n), tags);
  assert.deepEqual(p.pubs.map((x) => x.tags?.n), tags);
  assert.deepEqual(d.pubs.map((x) => x.data), Array.from({ length: 30 }, (_, n) => board(n)));
  assert.deepEqual(d.pubs.map((x) => x.offset), p.pubs.map((x) => x.offset));
  const stats = d.sub.deltaStats();
  assert.equal(stats.numFullPayloads, 1, `only the first in full: ${JSON.stringify(stats)}`);
  assert.equal(stats.numDeltaPayloads, 29);
  assert.ok(stats.bytesReceived * 5 < stats.bytesDecoded, `deltas are small: ${JSON.stringify(stats)}`);
  assert.equal(p.sub.deltaStats().numDeltaPayloads, 0);
  c.disconnect();
  c2.disconnect();
});

test('recovery with deltas: the missed publications decode, live deltas go on after', async () => {
  const c = client(server.url);
  const ctx = await connect(c);
  const channel = 'board:recover';
  const d = await subscribe(c, channel, { delta: 'fossil' });
  for (let n = 0; n < 5; n++) await api(server, KEY, 'publish', { channel, data: board(n) });
  await waitFor(() => d.pubs.length === 5, 5000, 'live publications');
  await api(server, KEY, 'disconnect', { user: '', client: ctx.client, disconnect: { code: 3011, reason: 'test' } });
  await waitFor(() => c.state !== 'connected', 5000, 'disconnect');
  for (let n = 5; n < 12; n++) await api(server, KEY, 'publish', { channel, data: board(n) });
  await waitFor(() => d.subscribed.length === 2, 10000, 'resubscribe');
  assert.equal(d.subscribed[1].recovered, true);
  for (let n = 12; n < 15; n++) await api(server, KEY, 'publish', { channel, data: board(n) });
  await waitFor(() => d.pubs.length === 15, 5000, 'recovered and live publications');
  assert.deepEqual(d.pubs.map((x) => x.data), Array.from({ length: 15 }, (_, n) => board(n)));
  const stats = d.sub.deltaStats();
  // One full payload at the first subscribe and one at the head of the
  // recovered run; everything else (the rest of the recovered run included)
  // as deltas.
  assert.equal(stats.numFullPayloads, 2, JSON.stringify(stats));
  assert.equal(stats.numDeltaPayloads, 13, JSON.stringify(stats));
  c.disconnect();
});

test('getState-style subscribe from offset 0 with deltas recovers the whole stream', async () => {
  const channel = 'board:state';
  for (let n = 0; n < 4; n++) await api(server, KEY, 'publish', { channel, data: board(n) });
  const c = client(server.url);
  await connect(c);
  let calls = 0;
  const d = await subscribe(c, channel, {
    delta: 'fossil',
    getState: async () => { calls++; return { offset: 0, epoch: '' }; },
  });
  await waitFor(() => d.pubs.length === 4, 5000, 'the stream from its start');
  assert.deepEqual(d.pubs.map((x) => x.data), Array.from({ length: 4 }, (_, n) => board(n)));
  await api(server, KEY, 'publish', { channel, data: board(4) });
  await waitFor(() => d.pubs.length === 5, 5000, 'live');
  assert.deepEqual(d.pubs[4].data, board(4));
  assert.equal(calls, 1);
  assert.equal(d.sub.deltaStats().numDeltaPayloads, 4);
  c.disconnect();
});

test('the protobuf build takes deltas as bytes', async () => {
  const c = client(server.url, ProtoCentrifuge);
  await connect(c);
  const channel = 'board:proto';
  const d = await subscribe(c, channel, { delta: 'fossil' });
  for (let n = 0; n < 10; n++) await api(server, KEY, 'publish', { channel, data: board(n) });
  await waitFor(() => d.pubs.length === 10, 5000, 'publications');
  const decoded = d.pubs.map((x) => JSON.parse(new TextDecoder().decode(x.data)));
  assert.deepEqual(decoded, Array.from({ length: 10 }, (_, n) => board(n)));
  assert.equal(d.sub.deltaStats().numDeltaPayloads, 9);
  c.disconnect();
});

test('a namespace without deltas gives a plain subscription; an unknown type is a bad request; a tags filter is refused', async () => {
  const c = client(server.url);
  await connect(c);
  const d = await subscribe(c, 'plain:x', { delta: 'fossil' });
  for (let n = 0; n < 3; n++) await api(server, KEY, 'publish', { channel: 'plain:x', data: board(n) });
  await waitFor(() => d.pubs.length === 3, 5000, 'publications');
  assert.deepEqual(d.pubs.map((x) => x.data), [board(0), board(1), board(2)]);
  assert.equal(d.sub.deltaStats().numPublications, 0, 'not negotiated');
  c.disconnect();

  // A raw client: centrifuge-js only ever sends 'fossil'.
  const raw = await openRaw(server.url);
  raw.send([{ id: 1, connect: {} }, { id: 2, subscribe: { channel: 'board:x', delta: 'xdelta' } }]);
  assert.equal((await raw.closed).code, 3501);
  // A tags filter (Centrifugo 6's `tf`) where the namespace does not allow
  // one (and with deltas the SDKs refuse it anyway): 107, as Centrifugo.
  const raw2 = await openRaw(server.url);
  raw2.send([{ id: 1, connect: {} }, { id: 2, subscribe: { channel: 'board:y', tf: { key: 'k', cmp: 'eq', val: 'v' } } }]);
  assert.deepEqual((await raw2.reply(2)).error, { code: 107, message: 'bad request' });
  raw2.close();
});

test('over the Redis broker: a delta subscriber on one node decodes publications made on another, across recovery', { timeout: 30000 }, async () => {
  const cl = await startCluster(TOML, { name: 'delta', n: 2 });
  try {
    const [A, B] = cl.nodes;
    const channel = 'board:redis';
    const url = (s) => `ws://${s.addr}/connection/websocket`;
    const c = cl.client(url(B));
    const ctx = await connect(c);
    const d = await subscribe(c, channel, { delta: 'fossil' });
    for (let n = 0; n < 10; n++) await api(A, KEY, 'publish', { channel, data: board(n), tags: { n: String(n) } });
    await waitFor(() => d.pubs.length === 10, 5000, 'live publications');
    assert.deepEqual(d.pubs.map((x) => x.tags?.n), Array.from({ length: 10 }, (_, n) => String(n)), 'tags over Redis');
    await api(B, KEY, 'disconnect', { user: '', client: ctx.client, disconnect: { code: 3011, reason: 'test' } });
    await waitFor(() => c.state !== 'connected', 5000, 'disconnect');
    for (let n = 10; n < 15; n++) await api(A, KEY, 'publish', { channel, data: board(n) });
    await waitFor(() => d.subscribed.length === 2, 10000, 'resubscribe');
    for (let n = 15; n < 20; n++) await api(A, KEY, 'publish', { channel, data: board(n) });
    await waitFor(() => d.pubs.length === 20, 5000, 'recovered and live');
    assert.equal(d.subscribed[1].recovered, true);
    assert.deepEqual(d.pubs.map((x) => x.data), Array.from({ length: 20 }, (_, n) => board(n)));
    const stats = d.sub.deltaStats();
    assert.ok(stats.numDeltaPayloads >= 16, JSON.stringify(stats));
  } finally {
    await cl.stop();
  }
});
