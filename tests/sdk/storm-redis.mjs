// Run: node --test storm-redis.mjs (scripts/test.sh's `storm` stage, release
// build; RINGCAST_BIN picks the binary, STORM_CLIENTS the client count).
// The reconnect storm of storm.mjs over two nodes and one redis-server
// (`--broker redis`): N centrifuge-js clients (10,000 by default), half
// connected to node A and half to node B, subscribed with recovery while a
// publisher on A runs. One API disconnect on A drops every client of both
// nodes (it reaches B through Redis); each client's next connection goes to
// the OTHER node, so every recovery reads the stream another node wrote.
// Each client must end with every publication exactly once, in order.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { api, health, ringcastBin, waitFor } from './harness.mjs';
import { startCluster, stormClients, stormConfig, stormPublisher, stormTally } from './nodes.mjs';

const N = Number(process.env.STORM_CLIENTS || 10000);
const KEY = 'storm-key';
let cl;
let nodes = [];
const clients = [];

before(async () => {
  cl = await startCluster(stormConfig(KEY), { name: 'storm' });
  nodes = cl.nodes;
});

after(async () => {
  for (const c of clients) c.disconnect();
  await cl?.stop();
});

test(`reconnect storm over 2 nodes and Redis: ${N} clients dropped at once recover on the other node, losing and duplicating nothing`, { timeout: 300000 }, async () => {
  const [A, B] = nodes;
  const urls = [A.url, B.url];
  const got = [];
  // Per client: the node (0 = A, 1 = B) of each connection that succeeded.
  const on = [];
  const CHANNELS = 10;
  const t0 = Date.now();
  try {
    const { counts } = await stormClients(N, CHANNELS, A.url, {
      clients,
      got,
      each: (i) => {
        // Dials A and B in turn, starting with i % 2: a reconnect goes to the
        // node the client was not on (unless a dial failed in between).
        let dials = 0;
        let last = -1;
        class Alternating extends WebSocket {
          constructor(_url, protocols) {
            last = (i + dials++) % 2;
            super(urls[last], protocols);
          }
        }
        const nodesOf = [];
        on.push(nodesOf);
        return {
          websocket: Alternating,
          listen(c, sub, seen) {
            // For a failure's report: each publication's offset, and where in
            // `seen` each (re)subscription started.
            seen.offsets = [];
            seen.marks = [];
            c.on('connected', () => nodesOf.push(last));
            sub.on('publication', (ctx) => seen.offsets.push(Number(ctx.offset)));
            sub.on('subscribed', (ctx) => {
              seen.marks.push({ at: seen.length, node: last, recovered: ctx.recovered, offset: Number(ctx.streamPosition?.offset) });
            });
          },
        };
      },
    });
    await waitFor(() => counts.subscribed === N, 120000, () => `${N} subscriptions (have ${counts.subscribed})`);
    const subscribedIn = Date.now() - t0;
    const perNode = [0, 1].map((k) => on.filter((x) => x[0] === k).length);
    assert.deepEqual(perNode, [Math.ceil(N / 2), Math.floor(N / 2)], 'half the clients on each node');

    // A publisher on A runs through the whole storm: channel k gets n = 0, 1, 2, ...
    const publisher = stormPublisher(A, KEY, CHANNELS);
    const { published } = publisher;
    let stormIn;
    let dropped;
    let during;
    try {
      // A few rounds before the drop (a slow build fans out slowly).
      await waitFor(() => published[0] >= 5, 60000, () => `the publisher running (${published[0]} rounds)`);
      const rounds1 = published[0];
      await waitFor(() => published[0] >= rounds1 + 5, 60000, () => `5 more publisher rounds (${published[0] - rounds1})`);

      // Drop every connection of both nodes at once (reconnect advised), from A.
      dropped = Date.now();
      const atDrop = published.reduce((a, b) => a + b, 0);
      await api(A, KEY, 'disconnect', { user: '', disconnect: { code: 3011, reason: 'storm' } });
      await waitFor(() => counts.subscribed === 2 * N, 180000,
        () => `${N} resubscriptions (have ${counts.subscribed - N}, recovered ${counts.recovered}, unrecovered ${counts.unrecovered})`);
      stormIn = Date.now() - dropped;
      during = published.reduce((a, b) => a + b, 0) - atDrop;
      const rounds2 = published[0];
      await waitFor(() => published[0] >= rounds2 + 5, 60000, () => `5 more publisher rounds (${published[0] - rounds2})`);
    } finally {
      await publisher.stop();
    }
    const total = published.reduce((a, b) => a + b, 0);
    await waitFor(() => got.every((seen, i) => seen.length >= published[i % CHANNELS]), 30000, 'final deliveries');

    const { lost, duplicated, disordered, bad } = stormTally(got, published);
    // The first few clients that got it wrong: their channel, (re)subscribes
    // (index into what they saw, node, stream offset) and [n, offset]s.
    for (const i of bad.slice(0, 5)) {
      const seen = got[i];
      console.log(`storm-redis: client ${i} storm:${i % CHANNELS} connected on ${JSON.stringify(on[i])} `
        + `subscribed ${JSON.stringify(seen.marks)} got ${JSON.stringify(seen.map((n, j) => [n, seen.offsets[j]]))}`);
    }
    // Recovered on the other node: the second connection is not on the
    // first's node.
    const crossed = on.filter((x) => x.length >= 2 && x[1] !== x[0]).length;
    const reconnects = on.reduce((a, x) => a + x.length - 1, 0);
    const healths = await Promise.all(nodes.map(health));
    console.log(`storm-redis: clients=${N} nodes=2 publications=${total} during_storm=${during} recovered=${counts.recovered} unrecovered=${counts.unrecovered} `
      + `lost=${lost} duplicated=${duplicated} out_of_order=${disordered} crossed=${crossed} reconnects=${reconnects} `
      + `subscribe_s=${(subscribedIn / 1000).toFixed(1)} storm_s=${(stormIn / 1000).toFixed(1)} bin=${ringcastBin()}`);
    assert.equal(counts.unrecovered, 0, 'every resubscription recovered');
    assert.equal(lost, 0, 'publications some client never got (the first such clients are printed above)');
    assert.equal(duplicated, 0, 'publications some client got twice (the first such clients are printed above)');
    assert.equal(disordered, 0, 'publications out of order (the first such clients are printed above)');
    assert.equal(counts.recovered, N);
    assert.equal(crossed, N, 'every client recovered on the other node');
    for (const [i, h] of healths.entries()) {
      assert.equal(h.status, 200, `/health on ${nodes[i].name}: ${JSON.stringify(h)}`);
    }
    for (const node of nodes) assert.ok(node.alive(), `${node.name} still running`);
  } catch (e) {
    e.message += `\n${cl.logs(30)}`;
    throw e;
  }
});
