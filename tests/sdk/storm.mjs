// Run: node --test storm.mjs (scripts/test.sh's `storm` stage, release build).
// Reconnect storm: N centrifuge-js clients (10,000 by default) subscribed
// with recovery while a publisher runs; every connection is dropped at once
// and reconnects. Each client must end with every publication exactly once,
// in order, and the server must stay up throughout.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { startWithConfig, waitFor, api } from './harness.mjs';
import { stormClients, stormConfig, stormPublisher, stormTally } from './nodes.mjs';

const N = Number(process.env.STORM_CLIENTS || 10000);
const KEY = 'storm-key';
let server;

before(async () => {
  server = await startWithConfig(stormConfig(KEY), ['--shards', '2']);
});

after(async () => {
  await server.stop();
});

test(`reconnect storm: ${N} clients dropped at once lose and duplicate nothing`, { timeout: 240000 }, async () => {
  const CHANNELS = 10;
  const { clients, got, counts } = await stormClients(N, CHANNELS, server.url);
  await waitFor(() => counts.subscribed === N, 120000, `${N} subscriptions`);

  // A publisher runs through the whole storm: channel k gets n = 0, 1, 2, ...
  const publisher = stormPublisher(server, KEY, CHANNELS);
  const { published } = publisher;
  const rounds1 = published[0];
  await waitFor(() => published[0] >= rounds1 + 5, 60000, () => `5 more publisher rounds (${published[0] - rounds1})`);

  // Drop every connection at once (reconnect advised).
  await api(server, KEY, 'disconnect', { user: '', disconnect: { code: 3011, reason: 'storm' } });
  await waitFor(() => counts.subscribed === 2 * N, 180000, `${N} resubscriptions`);
  const rounds2 = published[0];
  await waitFor(() => published[0] >= rounds2 + 5, 60000, () => `5 more publisher rounds (${published[0] - rounds2})`);
  await publisher.stop();
  const total = published.reduce((a, b) => a + b, 0);
  await waitFor(() => got.every((seen, i) => seen.length >= published[i % CHANNELS]), 30000, 'final deliveries');

  const { lost, duplicated, disordered } = stormTally(got, published);
  for (const c of clients) c.disconnect();
  console.log(`storm: clients=${N} publications=${total} recovered=${counts.recovered} unrecovered=${counts.unrecovered} lost=${lost} duplicated=${duplicated} out_of_order=${disordered}`);
  assert.equal(counts.unrecovered, 0, 'every resubscription recovered');
  assert.equal(lost, 0);
  assert.equal(duplicated, 0);
  assert.equal(disordered, 0);
  assert.equal(counts.recovered, N);
  const health = await fetch(`http://${server.apiAddr}/health`);
  assert.equal(health.status, 200);
});
