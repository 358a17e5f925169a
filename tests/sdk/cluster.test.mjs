// Two ringcast nodes over one Redis Cluster (3 masters, 3 replicas;
// `--broker redis --redis-cluster-address …`):
// - clients of both nodes on 12 channels: publications in one order with one
//   offset everywhere, API publish across nodes, presence of both nodes;
// - the channels are sharded: `<prefix>.pub.{C}` is a sharded PUB/SUB channel
//   (SSUBSCRIBE) on the master owning C's slot, never a classic one, and C's
//   keys live on that master; more than one master carries channels;
// - recovery across nodes: dropped on A, reconnected to B, exactly the
//   missed publications recovered;
// - a node's connection to a healthy master killed (CLIENT KILL): the node
//   finds that connection short of sharded subscriptions and subscribes
//   exactly that master's channels again; nothing published is lost;
// - a master SIGKILLed under load: the nodes live on, its replica is
//   promoted, delivery on its channels (and on another master's) is back
//   within 10 s of the promotion, /health is 200 on both nodes, and nothing
//   acknowledged once the cluster is whole again is lost;
// - a cluster without sharded PUB/SUB (SPUBLISH renamed away, as on Redis
//   6): classic PUB/SUB, publications still cross nodes in order.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { api, eventually, health, waitFor } from './harness.mjs';
import { connect, recoverOnOtherNode, sleep, startCluster, subscribe, summary } from './nodes.mjs';
import { command, startRedisCluster } from './redis.mjs';

const KEY = 'cluster-test-key';
const SECRET = 'cluster-test-secret';

const TOML = `
[client]
insecure = true
[api]
key = "${KEY}"
[namespace.chat]
history_size = 1000
history_ttl = 300
force_recovery = true
presence = true
join_leave = true
`;

/// The broker flags of a Redis Cluster: every node a seed.
const clusterFlags = (rc) => rc.urls.flatMap((u) => ['--redis-cluster-address', u]);

/// Two ringcast nodes on the Redis Cluster `rc` (their own key prefix), plus
/// the clients and publish loops a test makes (all stopped by `stop()`);
/// startCluster resolves once /health is 200 on both.
const nodesOn = (rc) => startCluster(TOML, { name: 'cluster', n: 2, broker: clusterFlags(rc), secret: SECRET });

const channels = (tag, n = 12) => [...Array(n).keys()].map((i) => `chat:${tag}${i}`);

/// Error codes of a loop and how often each came.
const codes = (errors) => JSON.stringify(errors.reduce((m, e) => ({ ...m, [e.code]: (m[e.code] ?? 0) + 1 }), {}));

/// The Redis Cluster of the first three tests (the fourth kills a master:
/// it has its own).
let shared;
before(async () => { shared = await startRedisCluster({ masters: 3, replicas: 1 }); });
after(async () => { await shared?.stop(); });

test('clients of two nodes on 12 channels: one order and one offset everywhere, API publish across nodes, presence of both nodes', { timeout: 60000 }, async () => {
  const cl = await nodesOn(shared);
  try {
    const [A, B] = cl.nodes;
    const chans = channels('c');
    // Four users, two per node, each subscribed to every channel.
    const peers = [];
    for (let i = 0; i < 4; i++) {
      const node = i % 2 ? B : A;
      const c = cl.client(node.url, { user: `user-${i}` });
      const { client } = await connect(c);
      const recs = [];
      for (const ch of chans) recs.push(await subscribe(c, ch));
      peers.push({ c, client, user: `user-${i}`, node, recs });
    }
    // Joins travel between nodes (join_leave over the sharded channel).
    const joined = (p, q, k) => p.recs[k].joins.some((x) => x.client === q.client && x.user === q.user);
    await waitFor(() => chans.every((_, k) => joined(peers[0], peers[1], k) && joined(peers[1], peers[2], k)), 10000,
      () => `cross-node joins on every channel (user-0 on ${chans[0]}: ${JSON.stringify(peers[0].recs[0].joins)})`);

    // Every client publishes 5 to every channel, channels and clients
    // concurrently, a client's own to one channel in sequence.
    const per = 5;
    await Promise.all(peers.flatMap((p, i) => chans.map(async (ch) => {
      for (let k = 0; k < per; k++) await p.c.publish(ch, { from: i, k });
    })));
    const total = per * peers.length;
    await waitFor(() => peers.every((p) => p.recs.every((r) => r.pubs.length >= total)), 15000,
      () => `all ${total} publications in every channel on every client (have ${peers.map((p) => p.recs.map((r) => r.pubs.length).join(',')).join(' | ')})`);
    const seen = (r) => r.pubs.map((x) => ({ offset: Number(x.offset), data: x.data }));
    for (const [k, ch] of chans.entries()) {
      const order = seen(peers[0].recs[k]);
      for (const [i, p] of peers.entries()) {
        assert.equal(p.recs[k].pubs.length, total, `${ch}, client ${i}: no duplicates`);
        assert.deepEqual(seen(p.recs[k]), order, `${ch}, client ${i} (on ${p.node.name}): same publications, order and offsets as client 0`);
      }
      for (let j = 1; j < order.length; j++) {
        assert.ok(order[j].offset > order[j - 1].offset, `${ch}: offsets increase: ${order[j - 1].offset} then ${order[j].offset}`);
      }
      for (let i = 0; i < peers.length; i++) {
        assert.deepEqual(order.filter((x) => x.data.from === i).map((x) => x.data.k), [...Array(per).keys()],
          `${ch}: client ${i}'s publications in the order it sent them`);
      }
    }

    // An API publish on A to every channel reaches every subscriber (those
    // on B included) with the offset and epoch it reports.
    const results = await Promise.all(chans.map((ch) => api(A, KEY, 'publish', { channel: ch, data: { from: 'api' } })));
    await waitFor(() => peers.every((p) => p.recs.every((r) => r.pubs.length === total + 1)), 10000,
      () => `the API publications everywhere (have ${peers.map((p) => p.recs.map((r) => r.pubs.length).join(',')).join(' | ')})`);
    for (const [k, ch] of chans.entries()) {
      assert.ok(results[k].epoch, `${ch}: publish result has an epoch: ${JSON.stringify(results[k])}`);
      for (const [i, p] of peers.entries()) {
        const last = p.recs[k].pubs.at(-1);
        assert.deepEqual(last.data, { from: 'api' }, `${ch}, client ${i}`);
        assert.equal(Number(last.offset), Number(results[k].offset), `${ch}, client ${i} (on ${p.node.name}): offset of the API publication`);
        assert.equal(p.recs[k].subscribed[0].streamPosition?.epoch, results[k].epoch, `${ch}, client ${i}: the stream's epoch at subscribe`);
      }
    }

    // Presence counts the clients of both nodes, on every channel.
    const want = JSON.stringify(peers.map((p) => p.client).sort());
    // centrifuge-js: { clients }, the server API: { presence }.
    const ids = (r) => JSON.stringify(Object.values(r.clients ?? r.presence).map((x) => x.client).sort());
    for (const [k, ch] of chans.entries()) {
      await eventually(async () => ids(await api(B, KEY, 'presence', { channel: ch })) === want, 5000,
        `API presence on B of ${ch} lists the subscribers of A and B`);
      assert.deepEqual(await api(A, KEY, 'presence_stats', { channel: ch }), { num_clients: 4, num_users: 4 }, `API presence_stats on A of ${ch}`);
      assert.equal(ids(await peers[0].recs[k].sub.presence()), want, `client presence on A of ${ch}`);
    }
    assert.deepEqual(await peers[1].recs[0].sub.presenceStats(), { numClients: 4, numUsers: 4 }, 'client presence_stats on B');

    // info on both nodes lists both (heartbeats over the classic control
    // channel); then channels on either node counts the subscribers of both.
    const names = JSON.stringify(cl.nodes.map((s) => s.name).sort());
    for (const node of cl.nodes) {
      await eventually(async () => {
        const r = await api(node, KEY, 'info', {});
        return JSON.stringify(r.nodes.map((x) => x.name).sort()) === names;
      }, 10000, `info on ${node.name} listing ${names}`);
    }
    for (const node of cl.nodes) {
      const r = await api(node, KEY, 'channels', { pattern: 'chat:c*' });
      for (const ch of chans) assert.deepEqual(r.channels[ch], { num_clients: 4 }, `channels on ${node.name}: ${JSON.stringify(r)}`);
    }
  } catch (e) {
    e.message += `\n${cl.logs()}`;
    throw e;
  } finally {
    await cl.stop();
  }
});

test('channels are sharded over the masters: sharded PUB/SUB on the slot owner, not classic; the keys on the same master', { timeout: 45000 }, async (t) => {
  const rc = shared;
  const cl = await nodesOn(rc);
  try {
    const [A, B] = cl.nodes;
    const chans = channels('s');
    const ca = cl.client(A.url);
    await connect(ca);
    const cb = cl.client(B.url);
    await connect(cb);
    const recs = [];
    for (const ch of chans) {
      await subscribe(ca, ch);
      recs.push(await subscribe(cb, ch));
    }
    // One publication per channel (its stream exists from then on), on B.
    await Promise.all(chans.map((ch) => api(A, KEY, 'publish', { channel: ch, data: { k: 0 } })));
    await waitFor(() => recs.every((r) => r.pubs.length === 1), 10000, () => `the publications on B (${recs.map((r) => r.pubs.length)})`);

    const pubName = (ch) => `${cl.prefix}.pub.{${ch}}`;
    const masters = await rc.masters();
    assert.equal(masters.length, 3, 'three masters');
    const owner = {};
    for (const ch of chans) owner[ch] = (await rc.masterOfKey(pubName(ch))).port;
    const held = {};
    let shard = {};
    await eventually(async () => {
      shard = Object.fromEntries(await Promise.all(masters.map(async (m) => [m.port, await command(m.port, ['PUBSUB', 'SHARDCHANNELS', `${cl.prefix}.*`])])));
      return chans.every((ch) => shard[owner[ch]].includes(pubName(ch)));
    }, 5000, () => `every channel's ${pubName('C')} in PUBSUB SHARDCHANNELS of the master owning its slot (owners ${JSON.stringify(owner)}; `
      + `SHARDCHANNELS ${JSON.stringify(shard)})`);
    for (const [port, list] of Object.entries(shard)) held[port] = chans.filter((ch) => list.includes(pubName(ch)));
    t.diagnostic(`channels per master: ${JSON.stringify(held)}`);
    const union = new Set(Object.values(shard).flat());
    for (const ch of chans) assert.ok(union.has(pubName(ch)), `${pubName(ch)} in the union of PUBSUB SHARDCHANNELS`);
    assert.ok(Object.values(held).filter((l) => l.length > 0).length > 1, `more than one master carries channels: ${JSON.stringify(held)}`);

    // No classic subscription to them anywhere; the control channel is classic.
    const classic = Object.fromEntries(await Promise.all(rc.nodes.map(async (n) => [n.port, await command(n.port, ['PUBSUB', 'CHANNELS', `${cl.prefix}.*`])])));
    for (const ch of chans) {
      for (const [port, list] of Object.entries(classic)) {
        assert.ok(!list.includes(pubName(ch)), `${pubName(ch)} is not a classic channel on ${port}: ${JSON.stringify(list)}`);
      }
    }
    assert.ok(Object.values(classic).some((l) => l.includes(`${cl.prefix}.control`)),
      `${cl.prefix}.control is a classic channel on some node: ${JSON.stringify(classic)}`);
    assert.ok(![...union].includes(`${cl.prefix}.control`), 'the control channel is not a sharded one');

    // Each channel's keys: all in one slot, on the master that owns it.
    for (const ch of chans) {
      const keys = [`${cl.prefix}.stream.{${ch}}`, `${cl.prefix}.presence.data.{${ch}}`];
      const slots = await Promise.all([pubName(ch), ...keys].map((k) => rc.slotOf(k)));
      assert.equal(new Set(slots).size, 1, `${ch}: its keys and its channel in one slot: ${JSON.stringify(slots)}`);
      for (const k of keys) {
        const m = await rc.masterOfKey(k);
        assert.equal(m.port, owner[ch], `${k} owned by the master of ${pubName(ch)}`);
        assert.equal(await command(m.port, ['EXISTS', k]), 1, `${k} exists on the master owning its slot (${m.port})`);
      }
    }
  } catch (e) {
    e.message += `\n${cl.logs()}`;
    throw e;
  } finally {
    await cl.stop();
  }
});

test('a client dropped on one node reconnects to the other and recovers exactly the 5 it missed', { timeout: 30000 }, async () => {
  const cl = await nodesOn(shared);
  try {
    await recoverOnOtherNode(cl, KEY, 'chat:rec');
  } catch (e) {
    e.message += `\n${cl.logs()}`;
    throw e;
  } finally {
    await cl.stop();
  }
});

test('a node\'s connection to a healthy master killed: the sharded subscriptions it held are counted missing and made again, publications flow, nothing lost', { timeout: 45000 }, async (t) => {
  const cl = await nodesOn(shared);
  try {
    const [A, B] = cl.nodes;
    const chans = channels('k');
    const pubName = (ch) => `${cl.prefix}.pub.{${ch}}`;
    const owner = {};
    for (const ch of chans) owner[ch] = (await shared.masterOfKey(pubName(ch))).port;
    // The master with the most of them: after a reconnect, redis-rs puts a
    // node's sharded channels in one SSUBSCRIBE, refused when they span
    // slots; ringcast must find them missing by itself.
    const ports = [...new Set(Object.values(owner))];
    const port = ports.reduce((a, b) => (chans.filter((c) => owner[c] === b).length > chans.filter((c) => owner[c] === a).length ? b : a));
    const mine = chans.filter((ch) => owner[ch] === port);
    assert.ok(mine.length >= 2, `a master with 2 or more of the channels: ${JSON.stringify(owner)}`);

    const sc = cl.client(B.url);
    await connect(sc);
    const recs = Object.fromEntries(await Promise.all(chans.map(async (ch) => [ch, await subscribe(sc, ch)])));
    // Only B subscribes: the one connection on that master with sharded
    // subscriptions is B's.
    const clients = async () => (await command(port, ['CLIENT', 'LIST'])).trim().split('\n')
      .map((l) => Object.fromEntries(l.split(' ').map((kv) => kv.split('='))));
    const held = (await clients()).filter((c) => Number(c.ssub) > 0);
    assert.equal(held.length, 1, `one connection with sharded subscriptions on ${port}: ${JSON.stringify(held)}`);
    assert.equal(Number(held[0].ssub), mine.length, `B's connection holds ${mine.join(', ')}`);

    // Publications before, the kill, publications during and after: the
    // subscriber ends up with every one, in order (recovery fills a gap).
    let sent = 0;
    const publishAll = async (tag) => {
      for (const ch of mine) await api(A, KEY, 'publish', { channel: ch, data: { tag, n: sent } });
      sent += 1;
    };
    const resubscribed = async () => Number((await (await fetch(`http://${B.apiAddr}/metrics`)).text())
      .match(/^ringcast_broker_resubscribed_channels_total(?:\{[^}]*\})? (\d+)/m)?.[1]);
    const before = await resubscribed();
    assert.ok(Number.isFinite(before), 'ringcast_broker_resubscribed_channels_total on B');
    await publishAll('before');
    assert.equal(await command(port, ['CLIENT', 'KILL', 'ID', held[0].id]), 1, 'CLIENT KILL ID');
    const killed = Date.now();
    await publishAll('during');
    const numsub = async () => Promise.all(mine.map(async (ch) => (await command(port, ['PUBSUB', 'SHARDNUMSUB', pubName(ch)]))[1]));
    let last = [];
    await eventually(async () => (last = await numsub()).every((n) => n === 1), 5000,
      () => `every channel of ${port} subscribed again (SHARDNUMSUB ${JSON.stringify(last)})`);
    const again = Date.now() - killed;
    // Only the channels that master's connection lost, not all 12.
    let made = 0;
    await eventually(async () => (made = (await resubscribed()) - before) >= mine.length, 5000,
      () => `B counts ${mine.length} channels subscribed again (has ${made})`);
    assert.equal(made, mine.length, `B subscribed again exactly the ${mine.length} channels of ${port}`);
    await publishAll('after');
    const want = sent;
    await waitFor(() => mine.every((ch) => recs[ch].pubs.length >= want), 5000,
      () => `all ${want} publications on every channel of ${port} (${mine.map((ch) => `${ch}: ${summary(recs[ch])} ${recs[ch].pubs.length}`).join('; ')})`);
    for (const ch of mine) {
      assert.deepEqual(recs[ch].pubs.map((p) => p.data.n), [...Array(want).keys()], `${ch}: every publication once, in order`);
    }
    let seen = [];
    await eventually(async () => (seen = await Promise.all(cl.nodes.map(health))).every((h) => h.status === 200), 5000,
      () => `/health 200 on both nodes (last: ${JSON.stringify(seen)})`);
    t.diagnostic(`channels of ${port}: ${mine.join(', ')}; subscribed again ${again} ms after the kill`);
  } catch (e) {
    e.message += `\n${cl.logs()}`;
    throw e;
  } finally {
    await cl.stop();
  }
});

test('a master SIGKILLed under load: the nodes live on, the replica is promoted, delivery on its channels back within 10 s of the promotion', { timeout: 90000 }, async (t) => {
  let rc;
  let cl;
  try {
    rc = await startRedisCluster({ masters: 3, replicas: 1, nodeTimeout: 1000 });
    cl = await nodesOn(rc);
    const [A, B] = cl.nodes;
    const chans = channels('f');
    const pubName = (ch) => `${cl.prefix}.pub.{${ch}}`;
    // The victim: the master of the first channel; a survivor channel on another master.
    const owner = {};
    for (const ch of chans) owner[ch] = await rc.masterOfKey(pubName(ch));
    const victim = owner[chans[0]];
    const hit = chans.filter((ch) => owner[ch] === victim);
    const other = chans.find((ch) => owner[ch] !== victim);
    assert.ok(other, `some channel on another master than ${victim.port}`);
    const [replica, ...more] = await rc.replicasOf(victim);
    assert.ok(replica && more.length === 0, `one replica of ${victim.port}`);

    const sc = cl.client(B.url);
    await connect(sc);
    const recs = Object.fromEntries(await Promise.all(chans.map(async (ch) => [ch, await subscribe(sc, ch)])));
    const pc = cl.client(A.url);
    await connect(pc);
    const loads = [chans[0], other].map((ch, p) => ({ ch, loop: cl.publishLoop(pc, ch, { p }) }));
    await waitFor(() => loads.every(({ ch, loop }) => loop.acked.length >= 100 && recs[ch].pubs.length >= 50), 15000,
      () => `publications flowing A → B (acked ${loads.map((l) => l.loop.acked.length)})`);
    const atKill = Object.fromEntries(loads.map(({ ch, loop }) => [ch, { acked: loop.acked.length, subscribed: recs[ch].subscribed.length }]));

    const shardSubsBefore = {};
    for (const ch of [chans[0], other]) {
      shardSubsBefore[ch] = { owner: owner[ch].port, numsub: (await command(owner[ch].port, ['PUBSUB', 'SHARDNUMSUB', pubName(ch)]))[1] };
    }
    await victim.kill();
    const killed = Date.now();
    await eventually(async () => (await command(replica.port, ['ROLE'], 500))[0] === 'master', 20000,
      () => `replica ${replica.port} of the killed master ${victim.port} promoted`, 20);
    const promoted = Date.now();
    for (const node of cl.nodes) assert.ok(node.alive(), `${node.name} still running after the failover`);

    // Probe through the API (retrying on error) until a publication sent
    // after the promotion is on B, for the victim's channel and a survivor's.
    // The probing stops 10 s after the promotion: that is the deadline (the
    // milliseconds in `back` are for the diagnostics only).
    const back = {};
    const probeErrors = {};
    await Promise.all([chans[0], other].map(async (ch) => {
      const r = recs[ch];
      probeErrors[ch] = [];
      for (let k = 0; Date.now() - promoted < 10000; k++) {
        try {
          await api(A, KEY, 'publish', { channel: ch, data: { probe: k, t: Date.now() } });
        } catch (e) {
          probeErrors[ch].push(e.message);
          await sleep(50); // paces the retries on purpose
          continue;
        }
        try {
          await waitFor(() => r.pubs.some((p) => p.data.probe !== undefined), 300, 'probe');
          back[ch] = r.pubs.find((p) => p.data.probe !== undefined).at - promoted;
          return;
        } catch { /* publish another */ }
      }
    }));
    // Who subscribes to the probed channels now (B should, on each owner).
    const shardSubs = {};
    for (const ch of [chans[0], other]) {
      try {
        const m = await rc.masterOfKey(pubName(ch));
        // The owner's clients (not the cluster bus): age, sharded
        // subscriptions, last command.
        const clients = (await command(m.port, ['CLIENT', 'LIST'])).trim().split('\n')
          .map((l) => Object.fromEntries(l.split(' ').map((kv) => kv.split('='))))
          .filter((c) => c.cmd !== 'client|list').map((c) => `age=${c.age} ssub=${c.ssub} sub=${c.sub} cmd=${c.cmd}`);
        shardSubs[ch] = { owner: m.port, numsub: (await command(m.port, ['PUBSUB', 'SHARDNUMSUB', pubName(ch)]))[1], clients };
      } catch (e) {
        shardSubs[ch] = e.message;
      }
    }
    const info = () => `killed ${victim.port}, replica ${replica.port} promoted ${promoted - killed} ms after the kill; `
      + `back ${JSON.stringify(back)}; shard subscribers before the kill ${JSON.stringify(shardSubsBefore)}, after the probes ${JSON.stringify(shardSubs)}; probe errors ${JSON.stringify(Object.fromEntries(Object.entries(probeErrors).map(([k, v]) => [k, [v.length, ...v.slice(-2)]])))}; `
      + `subscriber: ${chans[0]} ${summary(recs[chans[0]])}, ${other} ${summary(recs[other])}; load errors ${loads.map((l) => codes(l.loop.errors))}`;
    assert.ok(back[chans[0]] !== undefined,
      `delivery A → B on ${chans[0]} (owned by the killed master) of a probe sent within 10 s of the promotion (${info()})`);
    assert.ok(back[other] !== undefined,
      `delivery A → B on ${other} (another master's) of a probe sent within 10 s of the promotion (${info()})`);

    // The cluster is whole again, the nodes are healthy.
    await eventually(() => rc.ready(), 10000, 'the Redis Cluster ok on every live node');
    assert.equal((await rc.masterOfKey(pubName(chans[0]))).port, replica.port, 'the promoted replica owns the channel now');
    let seen = [];
    await eventually(async () => {
      seen = await Promise.all(cl.nodes.map(health));
      return seen.every((h) => h.status === 200);
    }, 10000, () => `/health 200 on both nodes after the failover (last: ${JSON.stringify(seen)})`);
    const healthy = Date.now() - promoted;

    // Every channel of the killed master delivers again, the load goes on.
    for (const ch of hit) {
      const r = recs[ch];
      const res = await api(A, KEY, 'publish', { channel: ch, data: { after: true } });
      const arrived = () => r.pubs.find((p) => p.data.after);
      await waitFor(arrived, 5000, () => `${ch} delivers after the failover (${summary(r)})`);
      assert.equal(Number(arrived().offset), Number(res.offset), `${ch}: the offset the publish reported`);
    }
    // From here on the cluster is whole: whatever the loops get acknowledged
    // must reach B.
    const settled = loads.map((l) => l.loop.acked.at(-1) ?? -1);
    const acked = loads.map((l) => l.loop.acked.length);
    await waitFor(() => loads.every((l, i) => l.loop.acked.length >= acked[i] + 50), 10000, '50 more publications acknowledged per load loop');
    await Promise.all(loads.map((l) => l.loop.stop()));
    const missing = {};
    for (const [i, { ch, loop }] of loads.entries()) {
      const r = recs[ch];
      const last = await api(A, KEY, 'publish', { channel: ch, data: { last: true } });
      await waitFor(() => r.pubs.some((p) => p.data.last), 10000, () => `the final publication on ${ch} on B (${summary(r)})`);
      assert.equal(Number(r.pubs.at(-1).offset), Number(last.offset), `${ch}: the final publication is the last one B got`);
      const got = r.pubs.filter((x) => x.data.p === loop.p && x.data.n !== undefined).map((x) => x.data.n);
      for (let i = 1; i < got.length; i++) {
        assert.ok(got[i] > got[i - 1], `${ch}: load in order, no duplicates: ${got[i - 1]} then ${got[i]} (${summary(r)})`);
      }
      const have = new Set(got);
      missing[ch] = {
        received: got.length, acked: loop.acked.length, lost: loop.acked.filter((n) => !have.has(n)),
        offset: Number(last.offset), epochs: [...new Set([...r.subscribed.map((x) => x.streamPosition?.epoch), last.epoch])],
      };
      const lostAfter = loop.acked.filter((n) => n > settled[i] && !have.has(n));
      assert.deepEqual(lostAfter, [], `${ch}: acknowledged after the cluster was back (n > ${settled[i]}) but never on B (${summary(r)})`);
    }
    for (const node of cl.nodes) assert.ok(node.alive(), `${node.name} still running`);
    t.diagnostic(`${info()}; /health 200 on both ${healthy} ms after the promotion; channels of the killed master ${JSON.stringify(hit)}; `
      + `acked before the kill ${JSON.stringify(atKill)}; load on B (acked but lost: around the failover): `
      + `${JSON.stringify(Object.fromEntries(Object.entries(missing).map(([k, v]) => [k, { ...v, lost: [v.lost.length, ...v.lost.slice(0, 5)] }])))}`);
  } catch (e) {
    // ringcast's own lines in full (the Redis client's retries drown them),
    // then the last lines as they are.
    e.message += cl ? cl.nodes.map((s) => {
      const lines = s.log().split('\n');
      return `\n--- ${s.name}: ringcast lines ---\n${lines.filter((l) => l.includes(' ringcast::')).join('\n')}`
        + `\n--- ${s.name}: last lines ---\n${lines.slice(-15).join('\n')}`;
    }).join('') : '';
    throw e;
  } finally {
    // Every line of both nodes, when asked for.
    if (cl && process.env.RINGCAST_TEST_LOGDIR) {
      for (const s of cl.nodes) writeFileSync(`${process.env.RINGCAST_TEST_LOGDIR}/${s.name}.log`, s.log());
    }
    await cl?.stop();
    await rc?.stop();
  }
});

test('a cluster without sharded PUB/SUB (Redis 6; here SPUBLISH renamed away): classic PUB/SUB, delivery across nodes in order', { timeout: 45000 }, async () => {
  const rc = await startRedisCluster({ masters: 3, replicas: 0, args: ['--rename-command', 'SPUBLISH', ''] });
  let cl;
  try {
    cl = await nodesOn(rc);
    const [A, B] = cl.nodes;
    const chans = channels('r', 6);
    const cb = cl.client(B.url);
    await connect(cb);
    const recs = [];
    for (const ch of chans) recs.push(await subscribe(cb, ch));
    for (let k = 0; k < 5; k++) {
      await Promise.all(chans.map((ch) => api(A, KEY, 'publish', { channel: ch, data: { k } })));
    }
    await waitFor(() => recs.every((r) => r.pubs.length === 5), 10000,
      () => `5 publications per channel on B (${recs.map((r) => r.pubs.length)})`);
    for (const [i, r] of recs.entries()) {
      assert.deepEqual(r.pubs.map((x) => x.data.k), [0, 1, 2, 3, 4], `${chans[i]}: in order`);
    }
    // The channels are classic PUB/SUB channels now, and no master has sharded ones.
    const pubName = (ch) => `${cl.prefix}.pub.{${ch}}`;
    const classic = new Set((await Promise.all(rc.nodes.map((n) => command(n.port, ['PUBSUB', 'CHANNELS', `${cl.prefix}.*`])))).flat());
    for (const ch of chans) assert.ok(classic.has(pubName(ch)), `${pubName(ch)} classic: ${JSON.stringify([...classic])}`);
    const sharded = (await Promise.all(rc.nodes.map((n) => command(n.port, ['PUBSUB', 'SHARDCHANNELS', `${cl.prefix}.*`])))).flat();
    assert.deepEqual(sharded, [], 'no sharded channels');
    assert.match(cl.logs(200), /no sharded PUB\/SUB on these servers/, 'the node says it fell back');
  } catch (e) {
    if (cl) e.message += `\n${cl.logs()}`;
    throw e;
  } finally {
    await cl?.stop();
    await rc.stop();
  }
});
