// centrifuge-js `getState` (Centrifugo 6 stream state recovery), on the
// memory broker and on two nodes over Redis:
// - a fresh subscription calls getState once; the app's position (read from
//   the server API's history top) is recovered from, so nothing between the
//   app's read and the subscribe is lost;
// - a reconnect whose position is still in the window recovers the missed
//   publications without calling getState again;
// - a position the window no longer covers is refused with error 112 (the
//   `reject_unrecovered` flag the SDK sends), getState is called again and
//   the subscription goes on from the app's new state, never with a silent
//   `recovered: false`;
// - getState answering offset 0 with an empty epoch ("nothing yet")
//   recovers every publication of the current stream still in the window.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Centrifuge } from 'centrifuge';
import WebSocket from 'ws';
import { api, startWithConfig, waitFor } from './harness.mjs';
import { startCluster } from './nodes.mjs';

const KEY = 'getstate-test-key';
const TOML = `
[client]
insecure = true
[api]
key = "${KEY}"
[namespace.state]
history_size = 5
history_ttl = 300
force_recovery = true
`;

/// The getState scenario against `pub` (the node publications are made on)
/// and `sub` (the node the subscriber connects to).
async function scenario(pub, sub, channel) {
  const publish = (n) => api(pub, KEY, 'publish', { channel, data: { n } });
  for (let n = 0; n < 3; n++) await publish(n);

  const c = new Centrifuge(sub.url, { websocket: WebSocket, minReconnectDelay: 100, maxReconnectDelay: 200 });
  const connected = [];
  c.on('connected', (ctx) => connected.push(ctx.client));
  const got = [];
  const subscribed = [];
  const errors = [];
  // The app's own state: what it loaded, and the stream position it read
  // first (the server API's history top).
  const states = [];
  const s = c.newSubscription(channel, {
    getState: async () => {
      const top = await api(pub, KEY, 'history', { channel, limit: 0 });
      states.push({ offset: top.offset, epoch: top.epoch });
      return { offset: top.offset, epoch: top.epoch };
    },
  });
  s.on('publication', (ctx) => got.push(ctx.data.n));
  s.on('subscribed', (ctx) => subscribed.push({ wasRecovering: ctx.wasRecovering, recovered: ctx.recovered }));
  s.on('error', (ctx) => errors.push(ctx.error));
  s.subscribe();
  c.connect();
  try {
    await waitFor(() => subscribed.length === 1, 5000, 'first subscribe');
    assert.equal(states.length, 1, 'getState once on a fresh subscribe');
    assert.equal(states[0].offset, 3);
    assert.deepEqual(got, [], 'nothing before the app state');

    await publish(3);
    await waitFor(() => got.length === 1, 5000, 'live publication');

    // Away, 2 publications (inside the window of 5), back: recovered, no getState.
    await api(sub, KEY, 'disconnect', { user: '', client: connected[0], disconnect: { code: 3011, reason: 'test' } });
    await waitFor(() => c.state !== 'connected', 5000, 'disconnect');
    await publish(4);
    await publish(5);
    await waitFor(() => subscribed.length === 2 && got.length === 3, 10000, () => `resubscribe with recovery (${JSON.stringify({ subscribed, got })})`);
    assert.deepEqual(got, [3, 4, 5]);
    assert.deepEqual(subscribed[1], { wasRecovering: true, recovered: true });
    assert.equal(states.length, 1, 'no getState after a successful recovery');

    // Away while 8 are published (more than the window): the server refuses
    // the position (112), the SDK asks the app again and goes on from there.
    await api(sub, KEY, 'disconnect', { user: '', client: connected[1], disconnect: { code: 3011, reason: 'test' } });
    await waitFor(() => c.state !== 'connected', 5000, 'second disconnect');
    for (let n = 6; n < 14; n++) await publish(n);
    await waitFor(() => subscribed.length === 3, 10000, () => `resubscribe after getState (${JSON.stringify({ subscribed, states, errors })})`);
    assert.equal(states.length, 2, 'getState again after the unrecoverable position');
    assert.equal(states[1].offset, 14);
    assert.ok(subscribed.every((x) => !(x.wasRecovering && !x.recovered)), `never a silent recovered:false: ${JSON.stringify(subscribed)}`);
    assert.deepEqual(got, [3, 4, 5], 'nothing half-recovered: the app reloaded its state instead');
    await publish(14);
    await waitFor(() => got.length === 4, 5000, 'live after the reload');
    assert.equal(got[3], 14);
    assert.ok(errors.every((e) => e.code !== 112), `112 is handled by the SDK, not an error event: ${JSON.stringify(errors)}`);
  } finally {
    c.disconnect();
  }
}

/// getState says "nothing yet" (offset 0, no epoch): everything of the
/// current stream still in the window comes as recovered publications.
async function fromScratch(pub, sub, channel) {
  for (let n = 0; n < 3; n++) await api(pub, KEY, 'publish', { channel, data: { n } });
  const c = new Centrifuge(sub.url, { websocket: WebSocket });
  const got = [];
  const subscribed = [];
  const s = c.newSubscription(channel, { getState: async () => ({ offset: 0, epoch: '' }) });
  s.on('publication', (ctx) => got.push(ctx.data.n));
  s.on('subscribed', (ctx) => subscribed.push({ wasRecovering: ctx.wasRecovering, recovered: ctx.recovered }));
  s.subscribe();
  c.connect();
  try {
    await waitFor(() => subscribed.length === 1 && got.length === 3, 5000, () => `recovered from scratch (${JSON.stringify({ subscribed, got })})`);
    assert.deepEqual(got, [0, 1, 2]);
    assert.deepEqual(subscribed[0], { wasRecovering: true, recovered: true });
  } finally {
    c.disconnect();
  }
}

test('getState on the memory broker: once, recovery without it, 112 and getState again past the window, from scratch', async () => {
  const server = await startWithConfig(TOML, ['--shards', '2']);
  try {
    await scenario(server, server, 'state:a');
    await fromScratch(server, server, 'state:b');
  } catch (e) {
    e.message += `\n${server.log()}`;
    throw e;
  } finally {
    await server.stop();
  }
});

test('getState across two nodes over Redis: the same, publications on A, the subscriber on B', async () => {
  const cl = await startCluster(TOML, { name: 'getstate' });
  try {
    const [A, B] = cl.nodes;
    await scenario(A, B, 'state:a');
    await fromScratch(A, B, 'state:b');
  } catch (e) {
    e.message += `\n${cl.logs()}`;
    throw e;
  } finally {
    await cl.stop();
  }
});
