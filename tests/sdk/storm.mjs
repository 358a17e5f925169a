// Run: node --test storm.mjs (scripts/test.sh's `storm` stage, release build).
// Reconnect storm: N centrifuge-js clients (10,000 by default) subscribed
// with recovery while a publisher runs; every connection is dropped at once
// and reconnects. Each client must end with every publication exactly once,
// in order, and the server must stay up throughout.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { Centrifuge } from 'centrifuge';
import WebSocket from 'ws';
import { startWithConfig, waitFor, api } from './harness.mjs';

const N = Number(process.env.STORM_CLIENTS || 10000);
const KEY = 'storm-key';
let server;

before(async () => {
  server = await startWithConfig(`
[client]
insecure = true
[api]
key = "${KEY}"
[namespace.storm]
history_size = 1000
history_ttl = 600
force_recovery = true
`, ['--shards', '2']);
});

after(async () => {
  await server.stop();
});

test(`reconnect storm: ${N} clients dropped at once lose and duplicate nothing`, { timeout: 240000 }, async () => {
  const clients = [];
  const got = [];
  let subscribedCount = 0;
  let recoveredCount = 0;
  let unrecovered = 0;
  const CHANNELS = 10;
  for (let i = 0; i < N; i++) {
    const c = new Centrifuge(server.url, { websocket: WebSocket, minReconnectDelay: 200, maxReconnectDelay: 3000 });
    const seen = [];
    got.push(seen);
    const sub = c.newSubscription(`storm:${i % CHANNELS}`, { recoverable: true });
    sub.on('publication', (ctx) => seen.push(ctx.data.n));
    sub.on('subscribed', (ctx) => {
      subscribedCount++;
      if (ctx.wasRecovering) {
        if (ctx.recovered) recoveredCount++; else unrecovered++;
      }
    });
    sub.subscribe();
    c.connect();
    clients.push(c);
    if (i % 500 === 499) await new Promise((r) => setTimeout(r, 20));
  }
  await waitFor(() => subscribedCount === N, 120000, `${N} subscriptions`);

  // A publisher runs through the whole storm: channel k gets n = 0, 1, 2, ...
  let running = true;
  const published = Array(CHANNELS).fill(0);
  const publisher = (async () => {
    while (running) {
      // One round: every channel's next publication, concurrently; a channel's
      // own publications stay in order (one in flight per channel).
      await Promise.all(published.map((n, k) => api(server, KEY, 'publish', { channel: `storm:${k}`, data: { n } })));
      for (let k = 0; k < CHANNELS; k++) published[k]++;
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  await new Promise((r) => setTimeout(r, 1000));

  // Drop every connection at once (reconnect advised).
  await api(server, KEY, 'disconnect', { user: '', disconnect: { code: 3011, reason: 'storm' } });
  await waitFor(() => subscribedCount === 2 * N, 180000, `${N} resubscriptions`);
  await new Promise((r) => setTimeout(r, 1000));
  running = false;
  await publisher;
  const total = published.reduce((a, b) => a + b, 0);
  await waitFor(() => got.every((seen, i) => seen.length >= published[i % CHANNELS]), 30000, 'final deliveries');

  let lost = 0, duplicated = 0, disordered = 0;
  got.forEach((seen, i) => {
    const want = published[i % CHANNELS];
    const uniq = new Set(seen);
    duplicated += seen.length - uniq.size;
    for (let n = 0; n < want; n++) if (!uniq.has(n)) lost++;
    for (let j = 1; j < seen.length; j++) if (seen[j] <= seen[j - 1]) disordered++;
  });
  for (const c of clients) c.disconnect();
  console.log(`storm: clients=${N} publications=${total} recovered=${recoveredCount} unrecovered=${unrecovered} lost=${lost} duplicated=${duplicated} out_of_order=${disordered}`);
  assert.equal(unrecovered, 0, 'every resubscription recovered');
  assert.equal(lost, 0);
  assert.equal(duplicated, 0);
  assert.equal(disordered, 0);
  assert.equal(recoveredCount, N);
  const health = await fetch(`http://${server.apiAddr}/health`);
  assert.equal(health.status, 200);
});
