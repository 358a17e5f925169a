// Redis failures under two ringcast nodes (`--broker redis`), each test with
// a subscriber on node B and a publisher on node A:
// - Sentinel: the master SIGKILLed, the Sentinels promote the replica, the
//   nodes find it through them and delivery A → B is back within 10 s;
// - two Redis servers, channels spread over both: one SIGKILLed, only its
//   channels fail (100), the others keep working, all back after a restart;
// - a silently dead link (redis-server SIGSTOPped): the probe marks it down
//   within 6 s, and after SIGCONT nothing acknowledged is lost.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, eventually, health, waitFor } from './harness.mjs';
import { connect, sleep, startCluster, subscribe, summary } from './nodes.mjs';
import { command, startRedis, startSentinel } from './redis.mjs';

const KEY = 'failover-test-key';

const TOML = `
[client]
insecure = true
[api]
key = "${KEY}"
[namespace.chat]
history_size = 1000
history_ttl = 300
force_recovery = true
`;

/// Two nodes with `broker` (the Redis flags), plus the clients and publish
/// loops a test makes (all stopped by `stop()`; the Redis processes are the
/// test's own).
const cluster = (broker) => startCluster(TOML, { name: 'failover', broker });

/// Error codes of a loop and how often each came.
const codes = (errors) => JSON.stringify(errors.reduce((m, e) => ({ ...m, [e.code]: (m[e.code] ?? 0) + 1 }), {}));

/// The loop's publications on `rec` must be in order without duplicates;
/// returns the acknowledged ones that never arrived.
function checkOrder(rec, loop) {
  const got = rec.pubs.filter((x) => x.data?.p === loop.p && x.data.n !== undefined).map((x) => x.data.n);
  for (let i = 1; i < got.length; i++) {
    assert.ok(got[i] > got[i - 1], `loop ${loop.p} in order, no duplicates: ${got[i - 1]} then ${got[i]} (${summary(rec)})`);
  }
  const have = new Set(got);
  return loop.acked.filter((n) => !have.has(n));
}

/// Polls /health of every node until `ok(h)` holds for all; resolves with
/// the ms from `since` at which each node first satisfied it.
async function healthOf(nodes, ok, since, ms, what) {
  const at = nodes.map(() => null);
  let last = [];
  await eventually(async () => {
    last = await Promise.all(nodes.map(health));
    last.forEach((h, i) => { if (at[i] === null && ok(h)) at[i] = Date.now() - since; });
    return at.every((x) => x !== null);
  }, ms - (Date.now() - since), () => `${what} (last: ${JSON.stringify(last)})`);
  return at;
}

const is503 = (h) => h.status === 503 && h.body?.status === 'unavailable' && h.body?.broker === 'redis';
const is200 = (h) => h.status === 200 && h.body?.status === 'ok';

/// A Sentinel's view of `name`: master port, replicas (port, flags, link)
/// and how many other Sentinels it knows.
async function sentinelView(s, name = 'mymaster') {
  const asObj = (flat) => Object.fromEntries(flat.flatMap((v, i) => (i % 2 ? [] : [[v, flat[i + 1]]])));
  const master = await command(s.port, ['SENTINEL', 'get-master-addr-by-name', name]);
  const replicas = (await command(s.port, ['SENTINEL', 'replicas', name])).map(asObj)
    .map((r) => ({ port: Number(r.port), flags: r.flags, link: r['master-link-status'] }));
  const sentinels = (await command(s.port, ['SENTINEL', 'sentinels', name])).length;
  return { master: master && Number(master[1]), replicas, sentinels };
}

test('Sentinel: the master SIGKILLed under load, the replica promoted, delivery A → B back within 10 s', { timeout: 90000 }, async (t) => {
  const procs = [];
  let cl;
  const sentinels = [];
  let views = [];
  try {
    // The replica's full sync is diskless: no 5 s wait for more replicas.
    const master = await startRedis({ args: ['--repl-diskless-sync-delay', '0'] });
    procs.push(master);
    const replica = await startRedis({ args: ['--replicaof', '127.0.0.1', String(master.port)] });
    procs.push(replica);
    for (let i = 0; i < 3; i++) {
      const s = await startSentinel(master.port, { downAfter: 1000, failoverTimeout: 5000 });
      procs.push(s);
      sentinels.push(s);
    }
    await eventually(async () => {
      const role = await command(replica.port, ['ROLE']);
      return role[0] === 'slave' && role[3] === 'connected';
    }, 15000, 'the replica in sync with the master');
    // Every Sentinel knows the master, the replica with its link up (learnt
    // from the replica's INFO, polled every 10 s) and the two other Sentinels.
    const ready = (v) => v.master === master.port && v.sentinels === 2
      && v.replicas.length === 1 && v.replicas[0].port === replica.port
      && v.replicas[0].flags === 'slave' && v.replicas[0].link === 'ok';
    const setup = Date.now();
    await eventually(async () => {
      views = await Promise.all(sentinels.map((s) => sentinelView(s)));
      return views.every(ready);
    }, 30000, () => `the Sentinels agreeing on master ${master.port} and replica ${replica.port} (${JSON.stringify(views)})`, 100);
    const sentinelReady = Date.now() - setup;

    cl = await cluster([...sentinels.flatMap((s) => ['--redis-sentinel-address', `127.0.0.1:${s.port}`]),
      '--redis-sentinel-master', 'mymaster']);
    const [A, B] = cl.nodes;
    await healthOf(cl.nodes, is200, Date.now(), 10000, '/health 200 on both nodes before the kill');
    const channel = 'chat:failover';
    const sc = cl.client(B.url);
    await connect(sc);
    const rec = await subscribe(sc, channel);
    const pc = cl.client(A.url);
    await connect(pc);
    const load = cl.publishLoop(pc, channel);
    await waitFor(() => load.acked.length >= 200 && rec.pubs.length >= 100, 15000, 'publications flowing A → B');
    const atKill = { acked: load.acked.length, subscribed: rec.subscribed.length };

    await master.kill();
    const killed = Date.now();
    // Watch the Sentinels: when does the first of them name the replica?
    let promoted = null;
    let watching = true;
    const watch = (async () => {
      while (watching && promoted === null && Date.now() - killed < 30000) {
        for (const s of sentinels) {
          try {
            const v = await command(s.port, ['SENTINEL', 'get-master-addr-by-name', 'mymaster'], 500);
            if (promoted === null && Number(v?.[1]) === replica.port) promoted = Date.now() - killed;
          } catch { /* ask again */ }
        }
        await sleep(50);
      }
    })();
    let resumed;
    try {
      const fresh = () => rec.pubs.find((p) => p.data.t > killed);
      await waitFor(() => fresh(), 10000 - (Date.now() - killed),
        () => `a publication sent after the kill on B within 10 s (promoted after ${promoted} ms; ${summary(rec)}; `
          + `publish errors ${codes(load.errors)}, last ${JSON.stringify(load.errors.slice(-2))})`);
      resumed = fresh().at - killed;
    } finally {
      watching = false;
      await watch;
    }

    // Every Sentinel names the replica, which is a master now.
    await eventually(async () => {
      views = await Promise.all(sentinels.map((s) => sentinelView(s)));
      return views.every((v) => v.master === replica.port);
    }, 10000, () => `every Sentinel naming the replica ${replica.port} (${JSON.stringify(views)})`);
    assert.equal((await command(replica.port, ['ROLE']))[0], 'master', 'the replica was promoted');
    const healthy = await healthOf(cl.nodes, is200, killed, 15000, '/health 200 on both nodes after the failover');

    // Delivery goes on, in order.
    const more = load.acked.length;
    await waitFor(() => load.acked.length >= more + 50, 10000, '50 more publications acknowledged');
    await load.stop();
    const last = await api(A, KEY, 'publish', { channel, data: { last: true } });
    await waitFor(() => rec.pubs.some((p) => p.data.last), 10000, () => `the final publication on B (${summary(rec)})`);
    assert.equal(Number(rec.pubs.at(-1).offset), Number(last.offset), 'the final publication is the last one B got');
    const missing = checkOrder(rec, load);
    for (const node of cl.nodes) assert.ok(node.alive(), `${node.name} still running`);
    t.diagnostic(`Sentinels ready ${sentinelReady} ms after start; acked before the kill ${atKill.acked}; `
      + `kill → Sentinel names the replica ${promoted} ms, → first new publication on B ${resumed} ms, `
      + `→ /health 200 ${JSON.stringify(healthy)} ms; publish errors ${codes(load.errors)}; `
      + `acked but not on B (lost by async replication): ${missing.length} ${JSON.stringify(missing.slice(0, 10))}; `
      + `subscriber after the kill: ${JSON.stringify(rec.subscribed.slice(atKill.subscribed).map((s) => s.recovered))}, ${summary(rec)}`);
  } catch (e) {
    e.message += `\n${cl ? cl.logs() : ''}`
      + sentinels.map((s, i) => `\n--- sentinel ${i} ---\n${s.log().split('\n').slice(-25).join('\n')}`).join('');
    throw e;
  } finally {
    await cl?.stop();
    await Promise.all(procs.map((p) => p.stop()));
  }
});

test('two Redis servers: channels spread over both; one SIGKILLed fails only its channels (100), back after a restart', { timeout: 60000 }, async (t) => {
  const redis = [];
  let cl;
  try {
    redis.push(await startRedis(), await startRedis());
    cl = await cluster(redis.flatMap((r) => ['--redis-address', r.url]));
    const [A, B] = cl.nodes;
    const channels = [...Array(20).keys()].map((i) => `chat:c${i}`);
    const sc = cl.client(B.url);
    await connect(sc);
    const recs = [];
    for (const ch of channels) recs.push(await subscribe(sc, ch));
    const pc = cl.client(A.url);
    await connect(pc);

    // Every channel: an API publish and a client publish on A, both on B
    // with the offsets of the channel's stream.
    const results = await Promise.all(channels.map((ch) => api(A, KEY, 'publish', { channel: ch, data: { k: 0 } })));
    await Promise.all(channels.map((ch) => pc.publish(ch, { k: 1 })));
    await waitFor(() => recs.every((r) => r.pubs.length >= 2), 10000,
      () => `2 publications on B in every channel (have ${recs.map((r) => r.pubs.length)})`);
    for (const [i, r] of recs.entries()) {
      assert.deepEqual(r.pubs.map((p) => p.data.k), [0, 1], `${r.channel}: both, once, in order`);
      assert.equal(Number(r.pubs[0].offset), Number(results[i].offset), `${r.channel}: the API publish's offset`);
      assert.ok(Number(r.pubs[1].offset) > Number(r.pubs[0].offset), `${r.channel}: offsets increase`);
    }

    // Which server holds which channel: where its stream is.
    const streams = async (r) => (await command(r.port, ['KEYS', `${cl.prefix}.stream.*`]))
      .map((k) => /\.stream\.\{(.*)\}$/.exec(k)[1]).sort();
    const held = await Promise.all(redis.map(streams));
    t.diagnostic(`streams: server 0 ${JSON.stringify(held[0])}, server 1 ${JSON.stringify(held[1])}`);
    assert.ok(held[0].length > 0 && held[1].length > 0, `both servers hold some channels: ${JSON.stringify(held)}`);
    assert.deepEqual([...held[0], ...held[1]].sort(), [...channels].sort(), 'every channel on exactly one server');

    // Kill server 0 (it also carries the control channel).
    const [dead, alive] = held;
    const recOf = (ch) => recs[channels.indexOf(ch)];
    const before = Object.fromEntries(recs.map((r) => [r.channel, { subscribed: r.subscribed.length, subscribing: r.subscribing.length }]));
    await redis[0].kill();
    const killed = Date.now();
    const down = await healthOf(cl.nodes, (h) => is503(h) && String(h.body.reason).includes(`127.0.0.1:${redis[0].port}`),
      killed, 5000, `/health 503 naming 127.0.0.1:${redis[0].port} on both nodes within 5 s`);
    for (const node of cl.nodes) assert.ok(node.alive(), `${node.name} still running`);

    // The survivor's channels work (client and API publish), the dead one's
    // fail with 100 temporary.
    for (const ch of alive) {
      const n = recOf(ch).pubs.length;
      await pc.publish(ch, { k: 2 });
      await api(A, KEY, 'publish', { channel: ch, data: { k: 3 } });
      await waitFor(() => recOf(ch).pubs.length === n + 2, 5000, () => `${ch} (on the live server) delivered to B (${summary(recOf(ch))})`);
    }
    for (const ch of dead) {
      const err = await pc.publish(ch, { k: 2 }).then(() => null, (e) => e);
      assert.ok(err, `client publish to ${ch} (on the dead server) fails`);
      assert.deepEqual({ code: err.code, temporary: err.temporary }, { code: 100, temporary: true }, `${ch}: ${JSON.stringify(err)}`);
      await assert.rejects(api(A, KEY, 'publish', { channel: ch, data: { k: 2 } }), `API publish to ${ch} fails`);
    }
    // A new subscriber: the live server's channel at once, the dead one's
    // refused with 100 temporary (retried by centrifuge-js).
    const nc = cl.client(A.url);
    await connect(nc);
    const late = await subscribe(nc, alive[0]);
    const pending = await subscribe(nc, dead[0], { wait: false });
    await waitFor(() => pending.errors.some((e) => e.code === 100), 5000, () => `subscribe to ${dead[0]} refused with 100 (${summary(pending)})`);
    assert.equal(pending.sub.state, 'subscribing', 'still trying');
    assert.ok(pending.errors.every((e) => e.code === 100 && e.temporary === true), summary(pending));
    // The live server's subscriptions on B were never touched.
    assert.deepEqual(sc.disconnects, [], 'the subscriber on B stayed connected');
    for (const ch of alive) {
      const r = recOf(ch);
      assert.deepEqual({ subscribed: r.subscribed.length, subscribing: r.subscribing.length }, before[ch],
        `${ch} (on the live server) never lost its subscription (${summary(r)})`);
    }

    // Restart server 0 (empty): every channel works again within 10 s.
    await redis[0].restart();
    const restarted = Date.now();
    const back = {};
    await Promise.all(channels.map(async (ch) => {
      const r = recOf(ch);
      for (let k = 0; Date.now() - restarted < 10000; k++) {
        try {
          await pc.publish(ch, { probe: k });
        } catch {
          await sleep(50);
          continue;
        }
        try {
          await waitFor(() => r.pubs.some((p) => p.data.probe !== undefined), 300, 'probe');
          back[ch] = Date.now() - restarted;
          return;
        } catch { /* publish another */ }
      }
    }));
    assert.deepEqual(channels.filter((ch) => back[ch] === undefined), [],
      `channels not delivering A → B within 10 s of the restart (${JSON.stringify(Object.fromEntries(dead.map((ch) => [ch, summary(recOf(ch))])))})`);
    const healthy = await healthOf(cl.nodes, is200, restarted, 10000, '/health 200 on both nodes after the restart');
    await waitFor(() => pending.subscribed.length === 1, 10000 - (Date.now() - restarted), () => `the refused subscribe to ${dead[0]} done (${summary(pending)})`);
    const l = late.pubs.length;
    await api(A, KEY, 'publish', { channel: alive[0], data: { k: 4 } });
    await waitFor(() => late.pubs.length === l + 1, 5000, 'the late subscriber still served');
    for (const node of cl.nodes) assert.ok(node.alive(), `${node.name} still running`);
    t.diagnostic(`/health 503 after ${JSON.stringify(down)} ms; back after the restart: `
      + `${JSON.stringify(Object.fromEntries(dead.map((ch) => [ch, back[ch]])))} ms (dead server's channels), `
      + `max ${Math.max(...alive.map((ch) => back[ch]))} ms (live server's), /health 200 ${JSON.stringify(healthy)} ms; `
      + `dead server's channels on B: ${dead.map((ch) => summary(recOf(ch))).join(' ')}`);
  } catch (e) {
    e.message += `\n${cl ? cl.logs() : ''}`;
    throw e;
  } finally {
    await cl?.stop();
    await Promise.all(redis.map((r) => r.stop()));
  }
});

test('a silently dead link: redis-server SIGSTOPped, idle then under load → /health 503 within 6 s; SIGCONT → back, nothing acknowledged lost', { timeout: 60000 }, async (t) => {
  let redis;
  let stopped = false;
  let cl;
  try {
    redis = await startRedis();
    cl = await cluster(['--redis-address', redis.url]);
    const [A, B] = cl.nodes;
    const channel = 'chat:stop';
    await healthOf(cl.nodes, is200, Date.now(), 10000, '/health 200 on both nodes before');
    const sc = cl.client(B.url);
    await connect(sc);
    const rec = await subscribe(sc, channel);
    const pc = cl.client(A.url);
    await connect(pc);
    const rounds = [];

    /// Publications flow A → B; Redis is SIGSTOPped (with `load`
    /// publishing, or idle: then only the probe can tell) and both nodes
    /// must report 503 within 6 s; after SIGCONT, a publication sent after
    /// it must be on B and /health 200 within 10 s.
    const round = async (p, { load }) => {
      let loop = cl.publishLoop(pc, channel, { p });
      await waitFor(() => loop.acked.length >= 100 && rec.pubs.filter((x) => x.data.p === p).length >= 50, 15000,
        `publications flowing A → B (round ${p})`);
      const loops = [loop];
      if (!load) {
        await loop.stop();
        const n = loop.acked.length;
        await waitFor(() => rec.pubs.filter((x) => x.data.p === p).length >= n, 5000, 'quiet: every publication on B');
      }
      const atStop = { subscribed: rec.subscribed.length, errors: loop.errors.length };
      process.kill(redis.pid, 'SIGSTOP');
      stopped = true;
      const since = Date.now();
      const down = await healthOf(cl.nodes, is503, since, 6000, `/health 503 on both nodes within 6 s of the SIGSTOP (${load ? 'under load' : 'idle'})`);
      const reasons = (await Promise.all(cl.nodes.map(health))).map((h) => h.body.reason);
      for (const node of cl.nodes) assert.ok(node.alive(), `${node.name} still running`);
      if (!load) {
        // Publishing into the dead link: refused, not hung.
        loop = cl.publishLoop(pc, channel, { p: p + 100 });
        loops.push(loop);
        await waitFor(() => loop.errors.length > 0, 5000, 'a client publish failing while Redis is stopped');
      }

      process.kill(redis.pid, 'SIGCONT');
      stopped = false;
      const resumed = Date.now();
      const fresh = () => rec.pubs.find((x) => x.data.p === loop.p && x.data.t > resumed);
      await waitFor(() => fresh(), 10000, () => `a publication sent after the SIGCONT on B within 10 s (${summary(rec)}; `
        + `publish errors ${codes(loop.errors)}, last ${JSON.stringify(loop.errors.slice(-2))})`);
      const delivered = fresh().at - resumed;
      const healthy = await healthOf(cl.nodes, is200, resumed, 10000, '/health 200 on both nodes within 10 s of the SIGCONT');
      await loop.stop();
      rounds.push({ loops, load, down, reasons, delivered, healthy, atStop });
    };
    await round(0, { load: false });
    await round(1, { load: true });

    // Redis lost nothing: once the final publication is on B, every
    // acknowledged one must be too, in order, once.
    await api(A, KEY, 'publish', { channel, data: { last: true } });
    await waitFor(() => rec.pubs.some((x) => x.data.last), 10000, () => `the final publication on B (${summary(rec)})`);
    for (const r of rounds) {
      for (const loop of r.loops) {
        assert.deepEqual(checkOrder(rec, loop), [], `loop ${loop.p}: acknowledged but never delivered to B (${summary(rec)})`);
      }
    }
    for (const s of rec.subscribed.slice(1)) {
      assert.deepEqual({ wasRecovering: s.wasRecovering, recovered: s.recovered }, { wasRecovering: true, recovered: true },
        `a resubscribe after a SIGCONT recovered (${summary(rec)})`);
    }
    for (const node of cl.nodes) assert.ok(node.alive(), `${node.name} still running`);
    for (const r of rounds) {
      t.diagnostic(`${r.load ? 'under load' : 'idle'}: /health 503 ${JSON.stringify(r.down)} ms after the SIGSTOP `
        + `(${JSON.stringify(r.reasons)}); after the SIGCONT: first new publication on B ${r.delivered} ms, `
        + `/health 200 ${JSON.stringify(r.healthy)} ms; acked ${r.loops.map((l) => l.acked.length)}, `
        + `publish errors ${r.loops.map((l) => codes(l.errors))}`);
    }
    t.diagnostic(`subscriber: ${summary(rec)}`);
  } catch (e) {
    e.message += `\n${cl ? cl.logs() : ''}`;
    throw e;
  } finally {
    if (stopped) {
      try { process.kill(redis.pid, 'SIGCONT'); } catch { /* gone */ }
    }
    await cl?.stop();
    await redis?.stop();
  }
});
