// Tags filters (Centrifugo 6's `tf`, centrifuge-js `tagsFilter`): the
// server API's publications carry tags; a subscriber with a filter gets
// exactly the publications whose tags pass it, live (subscribers with equal
// filters share one evaluation), in recovery, and over the Redis broker
// between nodes; a filter where the namespace allows none, or one that
// breaks the rules, is error 107.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { Centrifuge } from 'centrifuge';
import WebSocket from 'ws';
import { startWithConfig, waitFor, api } from './harness.mjs';
import { connect, startCluster, subscribe } from './nodes.mjs';

const KEY = 'tags-test-key';
const TOML = `
[client]
insecure = true
[api]
key = "${KEY}"
[namespace.match]
history_size = 100
history_ttl = 300
force_recovery = true
allow_tags_filter = true
[namespace.plain]
`;

let server;
before(async () => {
  server = await startWithConfig(TOML, ['--shards', '2']);
});
after(async () => {
  await server.stop();
});

const client = (url) => new Centrifuge(url, { websocket: WebSocket, minReconnectDelay: 100, maxReconnectDelay: 200 });
const goals = { key: 'kind', cmp: 'eq', val: 'goal' };
const lateOrCard = {
  op: 'or',
  nodes: [{ key: 'kind', cmp: 'eq', val: 'card' }, { key: 'minute', cmp: 'gt', val: '80' }],
};
const events = [
  { kind: 'goal', minute: '12' }, { kind: 'card', minute: '30' }, { kind: 'corner', minute: '44' },
  { kind: 'goal', minute: '85' }, { kind: 'corner', minute: '90' }, {},
];
const publishAll = async (srv, channel, from = 0) => {
  for (let n = 0; n < events.length; n++) {
    await api(srv, KEY, 'publish', { channel, data: { n: from + n }, tags: events[n] });
  }
};
const passes = (f, tags) => (f === goals ? tags.kind === 'goal'
  : tags.kind === 'card' || Number(tags.minute) > 80);
const expected = (f, from = 0) => events.map((t, n) => (passes(f, t) ? from + n : null)).filter((n) => n !== null);

test('each filter gets what its tags pass; two subscribers share one filter; an unfiltered subscriber gets all', async () => {
  const channel = 'match:live';
  const clients = [client(server.url), client(server.url), client(server.url), client(server.url)];
  for (const c of clients) await connect(c);
  const g1 = await subscribe(clients[0], channel, { tagsFilter: goals });
  const g2 = await subscribe(clients[1], channel, { tagsFilter: goals });
  const lc = await subscribe(clients[2], channel, { tagsFilter: lateOrCard });
  const all = await subscribe(clients[3], channel);
  await publishAll(server, channel);
  await waitFor(() => all.pubs.length === events.length, 5000, 'the unfiltered subscriber');
  await waitFor(() => lc.pubs.length === expected(lateOrCard).length && g2.pubs.length === 2, 5000, 'filtered');
  assert.deepEqual(g1.pubs.map((p) => p.data.n), expected(goals));
  assert.deepEqual(g2.pubs.map((p) => p.data.n), expected(goals));
  assert.deepEqual(lc.pubs.map((p) => p.data.n), expected(lateOrCard));
  assert.deepEqual(all.pubs.map((p) => p.data.n), events.map((_, n) => n));
  assert.deepEqual(g1.pubs.map((p) => p.tags.kind), ['goal', 'goal']);
  for (const c of clients) c.disconnect();
});

test('recovery gives a filtered subscriber only the missed publications its filter passes', async () => {
  const channel = 'match:recover';
  const c = client(server.url);
  await connect(c);
  const g = await subscribe(c, channel, { tagsFilter: lateOrCard });
  await publishAll(server, channel);
  await waitFor(() => g.pubs.length === expected(lateOrCard).length, 5000, 'live');
  c.disconnect();
  await waitFor(() => c.state === 'disconnected', 5000, 'disconnected');
  await publishAll(server, channel, 100);
  c.connect();
  await waitFor(() => g.subscribed.length === 2, 10000, 'resubscribed');
  assert.equal(g.subscribed[1].recovered, true);
  await waitFor(() => g.pubs.length === 2 * expected(lateOrCard).length, 5000, 'recovered');
  assert.deepEqual(g.pubs.map((p) => p.data.n), [...expected(lateOrCard), ...expected(lateOrCard, 100)]);
  c.disconnect();
});

test('a filter where the namespace allows none, or a broken one, is error 107', async () => {
  const c = client(server.url);
  await connect(c);
  for (const [channel, tf] of [['plain:x', goals], ['match:y', { key: 'kind', cmp: 'eq' }], ['match:z', { op: 'not', nodes: [] }]]) {
    // A permanent subscribe error: the SDK unsubscribes with its code.
    const codes = [];
    const sub = c.newSubscription(channel, { tagsFilter: tf });
    sub.on('unsubscribed', (ctx) => codes.push(ctx.code));
    sub.subscribe();
    await waitFor(() => codes.length > 0, 5000, `error for ${channel}`);
    assert.equal(codes[0], 107, channel);
    c.removeSubscription(sub);
  }
  c.disconnect();
});

test('over the Redis broker: a filtered subscriber on one node, publications on another', { timeout: 30000 }, async () => {
  const cl = await startCluster(TOML, { name: 'tags', n: 2 });
  try {
    const [A, B] = cl.nodes;
    const channel = 'match:redis';
    const c = cl.client(`ws://${B.addr}/connection/websocket`);
    await connect(c);
    const g = await subscribe(c, channel, { tagsFilter: goals });
    await publishAll(A, channel);
    await api(A, KEY, 'publish', { channel, data: { n: 'last' }, tags: { kind: 'goal' } });
    await waitFor(() => g.pubs.length === 3, 5000, 'filtered over Redis');
    assert.deepEqual(g.pubs.map((p) => p.data.n), [...expected(goals), 'last']);
  } finally {
    await cl.stop();
  }
});
