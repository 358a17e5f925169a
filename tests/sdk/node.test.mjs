// centrifuge-js 5.x in Node against ringcast serve: the flow users write.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { Centrifuge } from 'centrifuge';
import WebSocket from 'ws';
import { startServer, waitFor } from './harness.mjs';

let server;
const clients = [];

before(async () => {
  server = await startServer(['--shards', '2', '--insecure', '--presence', '--ping-interval', '1', '--pong-timeout', '0.5']);
});

after(async () => {
  for (const c of clients) c.disconnect();
  await server.stop();
});

/// centrifuge-js's WebSocket, counting the server's pings (`{}` frames).
let serverPings = 0;
class CountingWS extends WebSocket {
  constructor(url, protocols) {
    super(url, protocols);
    this.on('message', (m) => { if (String(m).split('\n').includes('{}')) serverPings++; });
  }
}

async function connect(websocket = WebSocket) {
  const c = new Centrifuge(server.url, { websocket });
  clients.push(c);
  const connected = new Promise((resolve, reject) => {
    c.once('connected', resolve);
    c.once('error', (ctx) => reject(new Error(JSON.stringify(ctx.error))));
  });
  c.connect();
  return { client: c, ctx: await connected };
}

async function subscribe(c, channel, received) {
  const sub = c.newSubscription(channel);
  sub.on('publication', (ctx) => received.push(ctx));
  const ok = new Promise((resolve, reject) => {
    sub.once('subscribed', resolve);
    sub.once('error', (ctx) => reject(new Error(JSON.stringify(ctx.error))));
  });
  sub.subscribe();
  await ok;
  return sub;
}

test('clients on both shards receive every publication in order; unsubscribe stops delivery; presence lists them', async () => {
  // 16 clients over SO_REUSEPORT: the chance that all land on one of 2 shards is 2^-15.
  const n = 16;
  const subs = [];
  const received = [];
  for (let i = 0; i < n; i++) {
    const { client, ctx } = await connect();
    assert.match(ctx.client, /^[0-9a-f-]{36}$/);
    received.push([]);
    subs.push(await subscribe(client, 'chat-e2e', received[i]));
  }

  const total = 200;
  for (let i = 0; i < total; i++) {
    await subs[0].publish({ n: i, text: `message ${i}` });
  }
  await waitFor(() => received.every((r) => r.length >= total), 10000, 'all publications');
  for (const r of received) {
    assert.equal(r.length, total);
    let last = 0n;
    r.forEach((ctx, i) => {
      assert.equal(ctx.channel, 'chat-e2e');
      assert.deepEqual(ctx.data, { n: i, text: `message ${i}` });
      const off = BigInt(ctx.offset);
      assert.ok(off > last, `offset ${off} after ${last}`);
      last = off;
    });
  }

  const presence = await subs[0].presence();
  assert.equal(Object.keys(presence.clients).length, n);
  const stats = await subs[0].presenceStats();
  assert.equal(stats.numClients, n);

  // Unsubscribe client 1: it gets nothing more, the others keep receiving.
  subs[1].unsubscribe();
  await waitFor(() => subs[1].state === 'unsubscribed', 2000, 'unsubscribed state');
  const before1 = received[1].length;
  for (let i = total; i < total + 20; i++) {
    await subs[0].publish({ n: i, text: `message ${i}` });
  }
  await waitFor(() => received[0].length === total + 20 && received[2].length === total + 20, 5000, 'post-unsubscribe publications');
  assert.equal(received[1].length, before1, 'unsubscribed client received publications');
  const after = await subs[0].presenceStats();
  assert.equal(after.numClients, n - 1);
});

test('an idle client stays connected across several server pings', async () => {
  const { client } = await connect(CountingWS);
  let disconnected = null;
  client.on('disconnected', (ctx) => { disconnected = ctx; });
  client.on('connecting', (ctx) => { disconnected = disconnected || ctx; });
  // The server pings every second (pong timeout 0.5 s); centrifuge-js
  // answers each with a pong. Three pings answered in time.
  await waitFor(() => serverPings >= 4 || disconnected, 10000, () => `4 server pings (${serverPings})`);
  assert.equal(disconnected, null, `client was disconnected: ${JSON.stringify(disconnected)}`);
  assert.equal(client.state, 'connected');
  // Still usable afterwards.
  const got = [];
  const sub = await subscribe(client, 'idle-check', got);
  await sub.publish({ ok: true });
  await waitFor(() => got.length === 1, 3000, 'publication after idle');
});
