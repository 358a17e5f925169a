// Several ringcast nodes over one real redis-server (`--broker redis`):
// publications, presence, join/leave, disconnects and recovery cross nodes;
// a SIGKILLed Redis makes /health say so and client publishes fail with 100,
// and after Redis is back delivery resumes; without persistence subscribers
// are told their state is gone (2500, then recovered: false), with an fsynced
// AOF nothing acknowledged is lost. Each node's delivery-latency histogram
// counts the deliveries to its own subscribers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { api, eventually, health, waitFor } from './harness.mjs';
import { connect, recoverOnOtherNode, startCluster, subscribe, summary } from './nodes.mjs';

const KEY = 'scaleout-test-key';
const SECRET = 'scaleout-test-secret';

const TOML = `
[client]
insecure = true
[api]
key = "${KEY}"
[namespace.chat]
history_size = 100
history_ttl = 300
force_recovery = true
presence = true
join_leave = true
`;

/// One redis-server and `n` nodes using it, plus the clients a test makes
/// (all closed by `stop()`).
const cluster = (n, { aof = false } = {}) => startCluster(TOML, { name: 'scaleout', n, aof, secret: SECRET });

test('three nodes over one Redis: publications in one order with one offset everywhere, API publish, presence, join/leave, disconnect, info', { timeout: 45000 }, async () => {
  const cl = await cluster(3);
  try {
    const [A, B, C] = cl.nodes;
    const channel = 'chat:x';

    // One client per node, each its own user.
    const peers = [];
    for (const [i, node] of cl.nodes.entries()) {
      const c = cl.client(node.url, { user: `user-${i}` });
      const { client } = await connect(c);
      peers.push({ c, client, user: `user-${i}`, rec: await subscribe(c, channel) });
    }
    // Joins travel between nodes: A saw B's and C's subscriber, B saw C's.
    const joined = (p, q) => p.rec.joins.some((i) => i.client === q.client && i.user === q.user);
    await waitFor(() => joined(peers[0], peers[1]) && joined(peers[0], peers[2]) && joined(peers[1], peers[2]),
      5000, `cross-node joins (A: ${JSON.stringify(peers[0].rec.joins)})`);

    // A visitor on C comes and goes: A and B see both.
    const v = cl.client(C.url, { user: 'visitor' });
    const visitor = { client: (await connect(v)).client, user: 'visitor' };
    const vrec = await subscribe(v, channel);
    await waitFor(() => joined(peers[0], visitor) && joined(peers[1], visitor), 5000, 'visitor join on A and B');
    vrec.sub.unsubscribe();
    const left = (p) => p.rec.leaves.some((i) => i.client === visitor.client && i.user === 'visitor');
    await waitFor(() => left(peers[0]) && left(peers[1]), 5000, 'visitor leave on A and B');

    // Every client publishes 15, concurrently across nodes, each its own in sequence.
    const per = 15;
    await Promise.all(peers.map(async (p, i) => {
      for (let k = 0; k < per; k++) await p.c.publish(channel, { from: i, k });
    }));
    const total = per * peers.length;
    await waitFor(() => peers.every((p) => p.rec.pubs.length >= total), 10000,
      `all ${total} publications on every node (have ${peers.map((p) => p.rec.pubs.length)})`);
    const seen = (p) => p.rec.pubs.map((x) => ({ offset: Number(x.offset), data: x.data }));
    const order = seen(peers[0]);
    for (const [i, p] of peers.entries()) {
      assert.equal(p.rec.pubs.length, total, `node ${i}: no duplicates`);
      assert.deepEqual(seen(p), order, `node ${i}: same publications, order and offsets as node 0`);
    }
    for (let j = 1; j < order.length; j++) {
      assert.ok(order[j].offset > order[j - 1].offset, `offsets increase: ${order[j - 1].offset} then ${order[j].offset}`);
    }
    for (let i = 0; i < peers.length; i++) {
      assert.deepEqual(order.filter((x) => x.data.from === i).map((x) => x.data.k), [...Array(per).keys()],
        `client ${i}'s publications in the order it sent them`);
    }

    // API publish on A reaches B and C with the offset and epoch it reports.
    const res = await api(A, KEY, 'publish', { channel, data: { from: 'api' } });
    assert.ok(res.epoch, `publish result has an epoch: ${JSON.stringify(res)}`);
    assert.ok(Number(res.offset) > order.at(-1).offset, `publish offset ${res.offset} after ${order.at(-1).offset}`);
    await waitFor(() => peers.every((p) => p.rec.pubs.length === total + 1), 5000, 'API publication on every node');
    for (const [i, p] of peers.entries()) {
      const last = p.rec.pubs.at(-1);
      assert.deepEqual(last.data, { from: 'api' });
      assert.equal(Number(last.offset), Number(res.offset), `node ${i}: offset of the API publication`);
      assert.equal(p.rec.subscribed[0].streamPosition?.epoch, res.epoch, `node ${i}: the stream's epoch at subscribe`);
    }

    // Presence counts the clients of all nodes (the visitor has left).
    const want = peers.map((p) => p.client).sort();
    // centrifuge-js: { clients }, the server API: { presence }.
    const ids = (r) => JSON.stringify(Object.values(r.clients ?? r.presence).map((x) => x.client).sort());
    await eventually(async () => ids(await peers[0].rec.sub.presence()) === JSON.stringify(want), 5000,
      'client presence on A lists the subscribers of A, B and C');
    const pres = await api(B, KEY, 'presence', { channel });
    assert.equal(ids(pres), JSON.stringify(want), 'API presence on B');
    assert.deepEqual(Object.values(pres.presence).map((x) => x.user).sort(), ['user-0', 'user-1', 'user-2']);
    assert.deepEqual(await api(C, KEY, 'presence_stats', { channel }), { num_clients: 3, num_users: 3 }, 'API presence_stats on C');
    assert.deepEqual(await peers[1].rec.sub.presenceStats(), { numClients: 3, numUsers: 3 }, 'client presence_stats on B');

    // API disconnect on A: one of victim's connections (on C) by client id,
    // then the user (the rest, on B). Other users stay connected.
    const v1 = cl.client(B.url, { user: 'victim' });
    const v2 = cl.client(C.url, { user: 'victim' });
    await connect(v1);
    const v2id = (await connect(v2)).client;
    await api(A, KEY, 'disconnect', { user: 'victim', client: v2id, disconnect: { code: 4501, reason: 'one' } });
    await waitFor(() => v2.state === 'disconnected', 5000, 'victim on C disconnected from A');
    assert.equal(v2.disconnects[0].code, 4501);
    await api(A, KEY, 'disconnect', { user: 'victim', disconnect: { code: 4502, reason: 'all' } });
    await waitFor(() => v1.state === 'disconnected', 5000, 'victim on B disconnected from A');
    assert.equal(v1.disconnects[0].code, 4502, 'the connection on B was left alone by the client-targeted disconnect');
    assert.deepEqual(peers.map((p) => p.c.state), ['connected', 'connected', 'connected'], 'other users untouched');

    // API subscribe / unsubscribe of a user, called on A, reach its
    // connection on B (server-side subscription pushes), and publications
    // on the server-side subscription arrive.
    const srv = { subscribed: [], unsubscribed: [], pubs: [] };
    peers[1].c.on('subscribed', (ctx) => srv.subscribed.push(ctx.channel));
    peers[1].c.on('unsubscribed', (ctx) => srv.unsubscribed.push(ctx.channel));
    peers[1].c.on('publication', (ctx) => srv.pubs.push(ctx.data));
    await api(A, KEY, 'subscribe', { user: 'user-1', channel: 'chat:server-side' });
    await waitFor(() => srv.subscribed.includes('chat:server-side'), 5000, 'server-side subscribe on B, called on A');
    await api(C, KEY, 'publish', { channel: 'chat:server-side', data: { srv: 1 } });
    await waitFor(() => srv.pubs.some((d) => d.srv === 1), 5000, 'publication on the server-side subscription');
    await api(A, KEY, 'unsubscribe', { user: 'user-1', channel: 'chat:server-side' });
    await waitFor(() => srv.unsubscribed.includes('chat:server-side'), 5000, 'server-side unsubscribe on B, called on A');

    // The broker's metrics: the link is up, publishes went through Redis.
    const metrics = await (await fetch(`http://${A.apiAddr}/metrics`)).text();
    assert.match(metrics, /^ringcast_broker_link_up\{address="redis:\/\/127\.0\.0\.1:\d+"\} 1$/m);
    const count = Number(/^ringcast_broker_publish_seconds_count (\d+)$/m.exec(metrics)?.[1]);
    assert.ok(count > 0, `publish round trips counted: ${count}`);
    // Valid exposition, lint included (promtool from Debian's prometheus).
    const lint = spawnSync('promtool', ['check', 'metrics'], { input: metrics, encoding: 'utf8' });
    assert.equal(lint.status, 0, `promtool: ${lint.error ?? ''}${lint.stdout}${lint.stderr}`);
    assert.equal(`${lint.stdout}${lint.stderr}`.trim(), '', 'promtool lint');

    // info on every node lists the three nodes.
    const names = JSON.stringify(cl.nodes.map((s) => s.name).sort());
    for (const node of cl.nodes) {
      await eventually(async () => {
        const r = await api(node, KEY, 'info', {});
        return JSON.stringify(r.nodes.map((x) => x.name).sort()) === names;
      }, 10000, `info on ${node.name} listing ${names}`);
    }

    // channels on any node counts the subscribers of every node (one per node).
    for (const node of cl.nodes) {
      const r = await api(node, KEY, 'channels', { pattern: 'chat:*' });
      assert.deepEqual(r.channels[channel], { num_clients: 3 }, `channels on ${node.name}: ${JSON.stringify(r)}`);
    }
  } catch (e) {
    e.message += `\n${cl.logs()}`;
    throw e;
  } finally {
    await cl.stop();
  }
});

/// A node's delivery-latency histogram (`ringcast_delivery_latency_seconds`):
/// { count, sum }.
async function deliveryLatency(node) {
  const text = await (await fetch(`http://${node.apiAddr}/metrics`)).text();
  const num = (re) => Number(re.exec(text)?.[1]);
  return {
    count: num(/^ringcast_delivery_latency_seconds_count (\d+)$/m),
    sum: num(/^ringcast_delivery_latency_seconds_sum (\S+)$/m),
  };
}

test('over Redis, each node counts each delivery of its subscribers once in its delivery-latency histogram', { timeout: 30000 }, async () => {
  const cl = await cluster(2);
  try {
    const [A, B] = cl.nodes;
    const channel = 'timed';
    // 3 subscribers on A, 2 on B; the publications come through B's API.
    const recs = [];
    for (const [node, n] of [[A, 3], [B, 2]]) {
      for (let i = 0; i < n; i++) {
        const c = cl.client(node.url, { user: `u-${node.name}-${i}` });
        await connect(c);
        recs.push(await subscribe(c, channel));
      }
    }
    const before = await Promise.all([A, B].map(deliveryLatency));
    for (let n = 0; n < 8; n++) await api(B, KEY, 'publish', { channel, data: { n } });
    await waitFor(() => recs.every((r) => r.pubs.length === 8), 5000, 'every subscriber got all 8');
    const want = [3 * 8, 2 * 8];
    let after;
    await eventually(async () => {
      after = await Promise.all([A, B].map(deliveryLatency));
      return after.every((h, i) => h.count - before[i].count >= want[i]);
    }, 5000, () => `histogram counts ${JSON.stringify({ before, after })}`);
    for (const i of [0, 1]) {
      assert.equal(after[i].count - before[i].count, want[i], `node ${i}: ${JSON.stringify({ before, after })}`);
      const sum = after[i].sum - before[i].sum;
      assert.ok(sum > 0 && sum < want[i] * 1.0, `node ${i}: sum ${sum} s`);
    }
  } catch (e) {
    e.message += `\n${cl.logs()}`;
    throw e;
  } finally {
    await cl.stop();
  }
});

test('a client dropped on one node reconnects to another and recovers exactly the 5 it missed', { timeout: 30000 }, async () => {
  const cl = await cluster(2);
  try {
    await recoverOnOtherNode(cl, KEY, 'chat:rec');
  } catch (e) {
    e.message += `\n${cl.logs()}`;
    throw e;
  } finally {
    await cl.stop();
  }
});

/// A subscriber on node B; three client publish loops (two over one
/// connection to A, one over a connection to B), each its own sequence
/// `{ p, n }`; Redis SIGKILLed under them: /health 503 naming the broker on
/// every node within 5 s, the nodes live on, client publishes fail with 100.
/// Then Redis is restarted (same port; the AOF, if any, is reloaded) and
/// delivery A → B must be back within 10 s. Returns what the test checks
/// further.
async function killAndRestartRedis(t, cl) {
  const [A, B] = cl.nodes;
  const channel = 'chat:load';
  for (const node of cl.nodes) {
    const h = await health(node);
    assert.equal(h.status, 200, `${node.name} healthy before: ${JSON.stringify(h)}`);
    assert.equal(h.body.status, 'ok');
    assert.equal(h.body.broker, 'redis');
  }
  const pc = cl.client(A.url);
  await connect(pc);
  const pcB = cl.client(B.url);
  await connect(pcB);
  const sc = cl.client(B.url);
  await connect(sc);
  const rec = await subscribe(sc, channel);

  const loads = [pc, pc, pcB].map((c, p) => cl.publishLoop(c, channel, { p, make: (n) => ({ p, n }) }));
  const acked = () => loads.reduce((sum, l) => sum + l.acked.length, 0);
  const errors = () => loads.flatMap((l) => l.errors);
  await waitFor(() => acked() >= 300 && rec.pubs.length >= 200, 10000, 'publications flowing to B');
  const atKill = { subscribed: rec.subscribed.length, subscribing: rec.subscribing.length, acked: acked() };
  await cl.redis.kill();
  const killed = Date.now();

  let seen = [];
  const states = async () => { seen = await Promise.all(cl.nodes.map(health)); return seen; };
  await eventually(async () => (await states()).every((h) => h.status === 503 && JSON.stringify(h.body).includes('redis')),
    5000 - (Date.now() - killed), () => `/health 503 naming redis on every node within 5 s (last: ${JSON.stringify(seen)})`);
  const unhealthy = Date.now() - killed;
  await waitFor(() => errors().some((e) => e.code === 100), 5000, () => `a client publish failing with 100 (errors: ${JSON.stringify(errors().slice(0, 5))})`);
  for (const node of cl.nodes) assert.ok(node.alive(), `${node.name} still running`);

  await cl.redis.restart();
  const restarted = Date.now();
  await Promise.all(loads.map((l) => l.stop()));
  // Probe A → B until one arrives (the first may only reveal the lost state).
  const probes = cl.publishLoop(pc, channel, { make: (k) => ({ probe: k }) });
  try {
    await waitFor(() => rec.pubs.some((p) => p.data.probe !== undefined), 10000 - (Date.now() - restarted),
      `delivery A → B within 10 s of the restart (${summary(rec)}; probe errors ${JSON.stringify(probes.errors.slice(-3))})`);
  } finally {
    await probes.stop();
  }
  await eventually(async () => (await states()).every((h) => h.status === 200), 10000 - (Date.now() - restarted),
    () => `/health 200 on every node again (last: ${JSON.stringify(seen)})`);
  for (const node of cl.nodes) assert.ok(node.alive(), `${node.name} still running`);
  t.diagnostic(`acked before the kill: ${atKill.acked}, /health 503 everywhere after ${unhealthy} ms, `
    + `publish errors: ${JSON.stringify([...new Set(errors().map((e) => e.code))])}, `
    + `delivery back ${Date.now() - restarted} ms after the restart; subscriber: ${summary(rec)}`);
  return { channel, rec, loads, atKill };
}

test('Redis SIGKILLed under load, restarted empty: 503 then back, publish errors 100, subscribers told 2500 and recovered:false', { timeout: 45000 }, async (t) => {
  const cl = await cluster(2);
  try {
    const { rec, atKill } = await killAndRestartRedis(t, cl);
    await waitFor(() => rec.subscribed.length > atKill.subscribed, 5000, `resubscribe after the restart (${summary(rec)})`);
    assert.ok(rec.subscribing.slice(atKill.subscribing).some((s) => s.code === 2500),
      `the server unsubscribed with 2500 insufficient state (${summary(rec)})`);
    const next = rec.subscribed[atKill.subscribed];
    assert.deepEqual({ wasRecovering: next.wasRecovering, recovered: next.recovered },
      { wasRecovering: true, recovered: false }, summary(rec));
  } catch (e) {
    e.message += `\n${cl.logs()}\n--- redis ---\n${cl.redis.log()}`;
    throw e;
  } finally {
    await cl.stop();
  }
});

test('Redis with an fsynced AOF SIGKILLed under load and restarted: no acknowledged publication is lost', { timeout: 45000 }, async (t) => {
  const cl = await cluster(2, { aof: true });
  try {
    const { channel, rec, loads, atKill } = await killAndRestartRedis(t, cl);
    // A last publication: once the subscriber has it, whatever recovery was due is done.
    await api(cl.nodes[0], KEY, 'publish', { channel, data: { last: true } });
    await waitFor(() => rec.pubs.some((p) => p.data.last), 10000, `the final publication (${summary(rec)})`);
    assert.ok(atKill.acked >= 300, 'the load was acknowledged before the kill');
    for (const [p, load] of loads.entries()) {
      const got = rec.pubs.filter((x) => x.data.p === p).map((x) => x.data.n);
      for (let i = 1; i < got.length; i++) {
        assert.ok(got[i] > got[i - 1], `publisher ${p} in order, no duplicates: ${got[i - 1]} then ${got[i]}`);
      }
      const have = new Set(got);
      assert.deepEqual(load.acked.filter((n) => !have.has(n)), [],
        `publisher ${p}: acknowledged but never delivered (${summary(rec)})`);
    }
    for (const s of rec.subscribed.slice(atKill.subscribed)) {
      assert.deepEqual({ wasRecovering: s.wasRecovering, recovered: s.recovered }, { wasRecovering: true, recovered: true },
        `a resubscribe after the restart recovered (${summary(rec)})`);
    }
  } catch (e) {
    e.message += `\n${cl.logs()}\n--- redis ---\n${cl.redis.log()}`;
    throw e;
  } finally {
    await cl.stop();
  }
});
