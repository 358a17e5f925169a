// Server-side subscriptions as the SDKs expect them (Centrifugo 6): the
// channels of the connection token's `channels` claim, of
// `client.server_subscriptions` and the user's personal channel are
// subscribed by the server at connect and reported in the connect reply's
// `subs` (centrifuge-js emits client-level `subscribed` events for them);
// their publications reach the client-level `publication` handler; after a
// reconnect the SDK sends its positions in the connect request and gets
// exactly what it missed (recovered: true). On the memory broker and on two
// nodes over Redis.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Centrifuge } from 'centrifuge';
import WebSocket from 'ws';
import { api, hs256Token, startWithConfig, waitFor } from './harness.mjs';
import { startCluster } from './nodes.mjs';

const KEY = 'serverside-test-key';
const SECRET = 'serverside-test-secret';
const NS = ['news', 'all', 'personal'].map((ns) => `
[namespace.${ns}]
history_size = 20
history_ttl = 300
force_recovery = true`).join('\n');
const TOML = `
[client]
server_subscriptions = ["all:broadcast"]
subscribe_to_user_personal_channel = true
user_personal_channel_namespace = "personal"
[api]
key = "${KEY}"
${NS}
`;
const CHANNELS = ['news:a', 'all:broadcast', 'personal:#alice'];

async function scenario(pub, sub) {
  const token = hs256Token(SECRET, { sub: 'alice', channels: ['news:a'] });
  const c = new Centrifuge(sub.url, { websocket: WebSocket, token, minReconnectDelay: 100, maxReconnectDelay: 200 });
  const connected = [];
  const subscribed = [];
  const got = Object.fromEntries(CHANNELS.map((ch) => [ch, []]));
  c.on('connected', (ctx) => connected.push(ctx.client));
  c.on('subscribed', (ctx) => subscribed.push({ channel: ctx.channel, recoverable: ctx.recoverable, wasRecovering: ctx.wasRecovering, recovered: ctx.recovered }));
  c.on('publication', (ctx) => got[ctx.channel].push(ctx.data.n));
  const publishAll = (n) => Promise.all(CHANNELS.map((channel) => api(pub, KEY, 'publish', { channel, data: { n } })));
  c.connect();
  try {
    await waitFor(() => connected.length === 1 && subscribed.length === 3, 5000, () => `connected with 3 server-side subscriptions (${JSON.stringify(subscribed)})`);
    assert.deepEqual(subscribed.map((s) => s.channel).sort(), [...CHANNELS].sort(), 'token channel, configured channel, personal channel');
    assert.ok(subscribed.every((s) => s.recoverable && !s.wasRecovering), JSON.stringify(subscribed));

    for (let n = 0; n < 3; n++) await publishAll(n);
    await waitFor(() => CHANNELS.every((ch) => got[ch].length === 3), 5000, () => `live publications (${JSON.stringify(got)})`);

    // Away while 4 more are published on each; the SDK reconnects with its
    // positions and recovers exactly those.
    await api(sub, KEY, 'disconnect', { user: 'alice', client: connected[0], disconnect: { code: 3011, reason: 'test' } });
    await waitFor(() => c.state !== 'connected', 5000, 'disconnect');
    for (let n = 3; n < 7; n++) await publishAll(n);
    await waitFor(() => connected.length === 2 && subscribed.length === 6, 10000, () => `reconnected (${JSON.stringify(subscribed)})`);
    for (const s of subscribed.slice(3)) {
      assert.deepEqual({ wasRecovering: s.wasRecovering, recovered: s.recovered }, { wasRecovering: true, recovered: true }, s.channel);
    }
    await waitFor(() => CHANNELS.every((ch) => got[ch].length === 7), 5000, () => `recovered publications (${JSON.stringify(got)})`);
    for (const ch of CHANNELS) assert.deepEqual(got[ch], [0, 1, 2, 3, 4, 5, 6], `${ch}: exactly the missed ones, in order`);

    // Live again.
    await publishAll(7);
    await waitFor(() => CHANNELS.every((ch) => got[ch].length === 8), 5000, 'live after recovery');

    // The server sees them as the user's subscriptions (presence-free
    // namespaces: the channels API counts them).
    const r = await api(sub, KEY, 'channels', {});
    for (const ch of CHANNELS) assert.deepEqual(r.channels[ch], { num_clients: 1 }, JSON.stringify(r));
  } finally {
    c.disconnect();
  }
}

test('server-side subscriptions on the memory broker: in the connect reply, live, recovered after a reconnect', async () => {
  const server = await startWithConfig(TOML, ['--shards', '2', '--token-hmac-secret-key', SECRET]);
  try {
    await scenario(server, server);
  } catch (e) {
    e.message += `\n${server.log()}`;
    throw e;
  } finally {
    await server.stop();
  }
});

test('server-side subscriptions over Redis: the subscriber on B, publications on A', async () => {
  const cl = await startCluster(TOML, { name: 'serverside', secret: SECRET });
  try {
    const [A, B] = cl.nodes;
    await scenario(A, B);
  } catch (e) {
    e.message += `\n${cl.logs()}`;
    throw e;
  } finally {
    await cl.stop();
  }
});
