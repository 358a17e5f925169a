// Helpers of the multi-node tests (scaleout, failover, the storms): ringcast
// nodes over Redis with the centrifuge-js clients and publish loops a test
// makes, subscriptions that record what they report, and the reconnect
// storms' publisher and tally, and the recovery-on-another-node scenario.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { Centrifuge } from 'centrifuge';
import WebSocket from 'ws';
import { api, eventually, health, hs256Token, startNodes, waitFor } from './harness.mjs';
import { freePort, startRedis } from './redis.mjs';

// Keys of this process's clusters never meet another run's, even on a shared Redis.
const RUN = crypto.randomBytes(4).toString('hex');
let runs = 0;

/// Resolves after `ms`.
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/// `n` nodes from `toml` with `--shards 2 --broker redis`, named
/// `${name}-${run}-0`, `${name}-${run}-1`, ... (run counts this process's
/// clusters), under the Redis key prefix `cl.prefix`. `broker`: the flags of
/// the Redis servers the test runs itself (`--redis-address …`, the Sentinel
/// flags); without it the cluster starts its own redis-server (`aof` as in
/// startRedis) on `cl.redis`, stopped by `stop()`. `secret` is passed as
/// `--token-hmac-secret-key` and signs the tokens of `client(url, { user })`.
/// The clients and publish loops a test makes through the cluster are all
/// stopped by `stop()`.
export async function startCluster(toml, { name, n = 2, broker, aof = false, secret } = {}) {
  const redis = broker ? null : await startRedis({ aof });
  const run = ++runs;
  const prefix = `ringcast-${name}-${RUN}-${run}`;
  let nodes;
  try {
    nodes = await startNodes(n, toml, ['--shards', '2', '--broker', 'redis',
      ...(broker ?? ['--redis-address', redis.url]), '--redis-prefix', prefix,
      ...(secret ? ['--token-hmac-secret-key', secret] : [])], { prefix: `${name}-${run}` });
    // Every node's Redis link is up (it connects in the background).
    let last;
    await eventually(async () => {
      last = await Promise.all(nodes.map(health));
      return last.every((h) => h.status === 200);
    }, 10000, () => `/health 200 on every node at the start (last: ${JSON.stringify(last)})`);
  } catch (e) {
    await Promise.all((nodes ?? []).map((s) => s.stop()));
    await redis?.stop();
    throw e;
  }
  const clients = [];
  const loops = [];
  return {
    redis,
    nodes,
    prefix,
    /// A publishLoop stopped by `stop()` at the latest.
    publishLoop(...args) {
      const l = publishLoop(...args);
      loops.push(l);
      return l;
    },
    /// A centrifuge-js client (not yet connected) recording its `errors`
    /// and `disconnects`; `user` gets it a token signed with `secret`.
    client(url, { user, ...opts } = {}) {
      if (user && !secret) throw new Error(`client for user ${user}: the cluster has no secret`);
      const c = new Centrifuge(url, {
        websocket: WebSocket,
        minReconnectDelay: 100,
        maxReconnectDelay: 500,
        timeout: 4000,
        ...(user ? { token: hs256Token(secret, { sub: user }) } : {}),
        ...opts,
      });
      c.errors = [];
      c.disconnects = [];
      c.on('error', (ctx) => c.errors.push(ctx.error));
      c.on('disconnected', (ctx) => c.disconnects.push(ctx));
      clients.push(c);
      return c;
    },
    /// The last `lines` of every node's log, for assertion messages.
    logs(lines = 40) {
      return nodes.map((s) => `--- ${s.name} ---\n${s.log().split('\n').slice(-lines).join('\n')}`).join('\n');
    },
    /// Stops the publish loops, disconnects the clients, stops the nodes
    /// (and the cluster's own Redis).
    async stop() {
      await Promise.all(loops.map((l) => l.stop()));
      for (const c of clients) c.disconnect();
      await Promise.all(nodes.map((s) => s.stop()));
      await redis?.stop();
    },
  };
}

/// Connects `c` and resolves with the `connected` context (within 5 s).
export async function connect(c) {
  let ctx;
  c.once('connected', (x) => { ctx = x; });
  c.connect();
  await waitFor(() => ctx, 5000, 'client connected');
  return ctx;
}

/// Subscribes and records everything the subscription reports; each
/// publication gets `at`, the time it arrived. `wait: false` does not wait
/// for the first `subscribed`; the other options go to newSubscription.
export async function subscribe(c, channel, { wait = true, ...opts } = {}) {
  const sub = c.newSubscription(channel, { minResubscribeDelay: 100, maxResubscribeDelay: 500, ...opts });
  const rec = { channel, sub, pubs: [], subscribed: [], subscribing: [], unsubscribed: [], errors: [], joins: [], leaves: [] };
  sub.on('publication', (ctx) => rec.pubs.push({ ...ctx, at: Date.now() }));
  sub.on('subscribed', (ctx) => rec.subscribed.push(ctx));
  sub.on('subscribing', (ctx) => rec.subscribing.push(ctx));
  sub.on('unsubscribed', (ctx) => rec.unsubscribed.push(ctx));
  sub.on('error', (ctx) => rec.errors.push(ctx.error));
  sub.on('join', (ctx) => rec.joins.push(ctx.info));
  sub.on('leave', (ctx) => rec.leaves.push(ctx.info));
  sub.subscribe();
  if (wait) await waitFor(() => rec.subscribed.length === 1, 5000, `subscribed to ${channel}`);
  return rec;
}

/// Client publishes of `make(n)`, n = 0, 1, ..., one at a time (each after
/// the previous one's reply) until stop(); a failed one is retried with the
/// next n after 20 ms. `p` names the loop (on the handle too); the default
/// `make` sends `{ p, n, t }`, t = when it was sent.
export function publishLoop(c, channel, { p = 0, make = (n) => ({ p, n, t: Date.now() }) } = {}) {
  const acked = [];
  const errors = [];
  let next = 0;
  let running = true;
  const done = (async () => {
    while (running) {
      const n = next++;
      try {
        await c.publish(channel, make(n));
        acked.push(n);
      } catch (e) {
        errors.push({ n, code: e?.code, message: e?.message, at: Date.now() });
        await sleep(20); // paces the retries on purpose (waits for nothing)
      }
    }
  })();
  return { p, acked, errors, async stop() { running = false; await done; } };
}

/// What a subscribe() record saw besides publications, as JSON.
export const summary = (rec) => JSON.stringify({
  subscribed: rec.subscribed.map((s) => ({ wasRecovering: s.wasRecovering, recovered: s.recovered })),
  subscribing: rec.subscribing.map((s) => s.code),
  unsubscribed: rec.unsubscribed.map((s) => s.code),
  errors: rec.errors,
});

/// The config of the reconnect storms: insecure clients, API key `key`,
/// namespace `storm` with recovery.
export const stormConfig = (key) => `
[client]
insecure = true
[api]
key = "${key}"
[namespace.storm]
history_size = 1000
history_ttl = 600
force_recovery = true
`;

/// The storms' publisher: API publishes on `server` in rounds, every
/// round one publication to each of `channels` channels `storm:k`
/// (concurrently; a channel's own stay in order, one in flight per
/// channel) with `{ n }`, n = 0, 1, 2, ..., then 10 ms; `published[k]`
/// counts channel k's. Runs until stop().
export function stormPublisher(server, key, channels) {
  let running = true;
  const published = Array(channels).fill(0);
  const done = (async () => {
    while (running) {
      await Promise.all(published.map((n, k) => api(server, key, 'publish', { channel: `storm:${k}`, data: { n } })));
      for (let k = 0; k < channels; k++) published[k]++;
      await sleep(10); // paces the rounds on purpose (waits for nothing)
    }
  })();
  return { published, async stop() { running = false; await done; } };
}

/// Checks what each storm client saw (`got[i]`, the n's of channel
/// `i % published.length` in arrival order) against `published`: how many
/// publications were lost, duplicated and out of order over all clients, and
/// which clients got anything wrong (`bad`).
export function stormTally(got, published) {
  let lost = 0, duplicated = 0, disordered = 0;
  const bad = [];
  got.forEach((seen, i) => {
    const want = published[i % published.length];
    const uniq = new Set(seen);
    duplicated += seen.length - uniq.size;
    let wrong = seen.length !== uniq.size;
    for (let n = 0; n < want; n++) if (!uniq.has(n)) { lost++; wrong = true; }
    for (let j = 1; j < seen.length; j++) if (seen[j] <= seen[j - 1]) { disordered++; wrong = true; }
    if (wrong) bad.push(i);
  });
  return { lost, duplicated, disordered, bad };
}

/// The storms' clients: `n` centrifuge-js clients of `url` (reconnect
/// delay 200 ms to 3 s), client i subscribed with recovery to
/// `storm:${i % channels}` and connecting, a 20 ms pause after every 500.
/// `got[i]` gets the n of each publication client i receives; `counts` the
/// `subscribed` events (`subscribed`), and of those that were recovering how
/// many `recovered` and how many not (`unrecovered`). Each client is pushed
/// to `clients` as it is made. `each(i)`, if given, returns client i's
/// `websocket` class and `listen(c, sub, seen)`, which adds listeners before
/// the counting ones.
export async function stormClients(n, channels, url, { clients = [], got = [], each } = {}) {
  const counts = { subscribed: 0, recovered: 0, unrecovered: 0 };
  for (let i = 0; i < n; i++) {
    const { websocket = WebSocket, listen } = each ? each(i) : {};
    const c = new Centrifuge(url, { websocket, minReconnectDelay: 200, maxReconnectDelay: 3000 });
    const seen = [];
    got.push(seen);
    const sub = c.newSubscription(`storm:${i % channels}`, { recoverable: true });
    listen?.(c, sub, seen);
    sub.on('publication', (ctx) => seen.push(ctx.data.n));
    sub.on('subscribed', (ctx) => {
      counts.subscribed++;
      if (ctx.wasRecovering) {
        if (ctx.recovered) counts.recovered++; else counts.unrecovered++;
      }
    });
    sub.subscribe();
    c.connect();
    clients.push(c);
    if (i % 500 === 499) await sleep(20); // paces the connects on purpose
  }
  return { clients, got, counts };
}

/// A client of cluster `cl` connected to node A and subscribed to `channel`
/// (recoverable) is dropped, misses 5 publications (made on both nodes with
/// the API key `key`), reconnects to node B and must recover exactly those
/// 5, in order, with the offsets the publishes reported; then a live one
/// from A arrives.
export async function recoverOnOtherNode(cl, KEY, channel) {
  const [A, B] = cl.nodes;
  // First dial A; while the gate is shut, dial a port nobody listens on;
  // then B. So the publications below are surely missed.
  const dead = `ws://127.0.0.1:${await freePort()}/connection/websocket`;
  let gate = false;
  const dialed = [];
  class Routed extends WebSocket {
    constructor(_url, protocols) {
      const url = dialed.length === 0 ? A.url : gate ? B.url : dead;
      dialed.push(url);
      super(url, protocols);
    }
  }
  const c = cl.client(A.url, { websocket: Routed });
  const connected = [];
  c.on('connected', (ctx) => connected.push(ctx.client));
  c.connect();
  const rec = await subscribe(c, channel, { recoverable: true });
  await waitFor(() => connected.length === 1, 5000, 'connected to A');

  const got = () => rec.pubs.map((p) => p.data.n);
  for (let n = 0; n < 3; n++) await api(B, KEY, 'publish', { channel: channel, data: { n } });
  await waitFor(() => rec.pubs.length === 3, 5000, 'live publications from B on A');

  await api(A, KEY, 'disconnect', { user: '', client: connected[0], disconnect: { code: 3011, reason: 'move' } });
  await waitFor(() => c.state !== 'connected', 5000, 'client dropped');
  const missed = [];
  for (let n = 3; n < 8; n++) {
    missed.push(await api(n % 2 ? A : B, KEY, 'publish', { channel: channel, data: { n } }));
  }
  gate = true;
  await waitFor(() => rec.subscribed.length === 2, 10000, `resubscribe on B (${summary(rec)})`);
  await waitFor(() => rec.pubs.length >= 8, 5000, `recovered publications (have ${got()})`);
  assert.equal(dialed.at(-1), B.url, 'the reconnect went to node B');
  assert.equal(connected.length, 2);
  assert.deepEqual(got(), [0, 1, 2, 3, 4, 5, 6, 7], 'exactly the missed ones, in order, no duplicates');
  assert.deepEqual(rec.pubs.slice(3).map((p) => Number(p.offset)), missed.map((r) => Number(r.offset)),
    'recovered with the offsets the publishes reported');
  assert.deepEqual({ wasRecovering: rec.subscribed[1].wasRecovering, recovered: rec.subscribed[1].recovered },
    { wasRecovering: true, recovered: true });

  await api(A, KEY, 'publish', { channel: channel, data: { n: 8 } });
  await waitFor(() => rec.pubs.length === 9, 5000, 'live publication from A after recovery on B');
}
