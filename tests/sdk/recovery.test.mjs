// centrifuge-js recovery: a client goes away, publications happen, it comes
// back and receives exactly the missed ones (recovered: true); after the
// history window has moved on it is told recovered: false.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { Centrifuge } from 'centrifuge';
import WebSocket from 'ws';
import { startWithConfig, waitFor, api } from './harness.mjs';

const KEY = 'recovery-test-key';
let server;

before(async () => {
  server = await startWithConfig(`
[client]
insecure = true
[api]
key = "${KEY}"
[namespace.chat]
history_size = 10
history_ttl = 300
force_recovery = true
`, ['--shards', '2']);
});

after(async () => {
  await server.stop();
});

test('missed publications are recovered on reconnect, and recovered:false once the window moved on', async () => {
  const c = new Centrifuge(server.url, { websocket: WebSocket, minReconnectDelay: 100, maxReconnectDelay: 200 });
  const connected = [];
  c.on('connected', (ctx) => connected.push(ctx.client));
  const got = [];
  const subscribed = [];
  const sub = c.newSubscription('chat:room', { recoverable: true });
  sub.on('publication', (ctx) => got.push(ctx.data.n));
  sub.on('subscribed', (ctx) => subscribed.push({ wasRecovering: ctx.wasRecovering, recovered: ctx.recovered }));
  sub.subscribe();
  c.connect();
  await waitFor(() => subscribed.length === 1, 5000, 'first subscribe');

  for (let n = 0; n < 3; n++) await api(server, KEY, 'publish', { channel: 'chat:room', data: { n } });
  await waitFor(() => got.length === 3, 5000, 'live publications');

  // Knock the client off with a reconnect-advised code, publish while it is away.
  await api(server, KEY, 'disconnect', { user: '', client: connected[0], disconnect: { code: 3011, reason: 'test' } });
  await waitFor(() => c.state !== 'connected', 5000, 'disconnect');
  for (let n = 3; n < 8; n++) await api(server, KEY, 'publish', { channel: 'chat:room', data: { n } });
  await waitFor(() => subscribed.length === 2, 10000, 'resubscribe');
  await waitFor(() => got.length >= 8, 5000, 'recovered publications');
  assert.deepEqual(got, [0, 1, 2, 3, 4, 5, 6, 7], 'exactly the missed ones, in order, no duplicates');
  assert.deepEqual(subscribed[1], { wasRecovering: true, recovered: true });

  // Live delivery continues after recovery.
  await api(server, KEY, 'publish', { channel: 'chat:room', data: { n: 8 } });
  await waitFor(() => got.length === 9, 5000, 'live after recovery');

  // Away again while more than the window (10) is published: not recoverable.
  // The client goes away by itself and comes back only after the last
  // publication (a server disconnect would let it reconnect in the middle
  // of the 21 publishes on a slow host, and recover).
  c.disconnect();
  await waitFor(() => c.state === 'disconnected', 5000, 'second disconnect');
  for (let n = 9; n < 30; n++) await api(server, KEY, 'publish', { channel: 'chat:room', data: { n } });
  c.connect();
  await waitFor(() => subscribed.length === 3, 10000, 'second resubscribe');
  assert.deepEqual(subscribed[2], { wasRecovering: true, recovered: false });
  assert.equal(got.length, 9, 'nothing half-recovered');
  c.disconnect();
});
