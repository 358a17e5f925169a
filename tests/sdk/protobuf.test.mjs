// centrifuge-js's protobuf build (`centrifuge/build/protobuf`, the
// `centrifuge-protobuf` subprotocol, binary frames; and over http_stream
// with application/octet-stream) against ringcast: pub/sub, history,
// recovery, and a JSON client on the same channel.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { Centrifuge as ProtoCentrifuge } from 'centrifuge/build/protobuf';
import { Centrifuge } from 'centrifuge';
import WebSocket from 'ws';
import { startWithConfig, waitFor, api } from './harness.mjs';

const KEY = 'protobuf-test-key';
let server;

before(async () => {
  server = await startWithConfig(`
[client]
insecure = true
[api]
key = "${KEY}"
[transports]
http_stream = true
[channel]
presence = true
allow_publish_for_client = true
history_size = 100
history_ttl = 300
force_recovery = true
`, ['--shards', '2']);
});

after(async () => {
  await server.stop();
});

const enc = (v) => new TextEncoder().encode(JSON.stringify(v));
const dec = (b) => JSON.parse(new TextDecoder().decode(b));

test('protobuf client: subscribe, publications in order, publish, presence, history, recovery; a JSON client alongside', async () => {
  const channel = 'proto-room';
  let subprotocol = null;
  class Spy extends WebSocket {
    constructor(url, protocols) {
      super(url, protocols);
      this.on('upgrade', (res) => { subprotocol = res.headers['sec-websocket-protocol']; });
    }
  }
  const c = new ProtoCentrifuge(server.url, { websocket: Spy, minReconnectDelay: 100, maxReconnectDelay: 300 });
  const connected = [];
  c.on('connected', (ctx) => connected.push(ctx));
  const got = [];
  const subscribed = [];
  const sub = c.newSubscription(channel);
  sub.on('publication', (ctx) => got.push(dec(ctx.data).n));
  sub.on('subscribed', (ctx) => subscribed.push({ wasRecovering: ctx.wasRecovering, recovered: ctx.recovered }));
  sub.subscribe();
  c.connect();

  const j = new Centrifuge(server.url, { websocket: WebSocket });
  const jgot = [];
  const jsub = j.newSubscription(channel);
  jsub.on('publication', (ctx) => jgot.push(ctx.data.n));
  let jsubscribed = false;
  jsub.on('subscribed', () => { jsubscribed = true; });
  jsub.subscribe();
  j.connect();
  try {
    await waitFor(() => subscribed.length === 1 && jsubscribed, 5000, 'subscribed');
    assert.equal(subprotocol, 'centrifuge-protobuf');
    assert.equal(connected[0].transport, 'websocket');

    for (let n = 0; n < 50; n++) await api(server, KEY, 'publish', { channel, data: { n } });
    await waitFor(() => got.length === 50 && jgot.length === 50, 5000, () => `50 each (got ${got.length}, ${jgot.length})`);
    assert.deepEqual(got, [...Array(50).keys()]);
    assert.deepEqual(jgot, got);

    // The protobuf client publishes (JSON bytes): both see it.
    await sub.publish(enc({ n: 50 }));
    await waitFor(() => got.length === 51 && jgot.length === 51, 5000, 'own publication');
    assert.equal(jgot[50], 50);

    const presence = await sub.presence();
    assert.ok(Object.values(presence.clients).some((p) => p.client === connected[0].client));
    const stats = await sub.presenceStats();
    assert.equal(stats.numClients, 2);
    const history = await sub.history({ limit: 3, reverse: true });
    assert.deepEqual(history.publications.map((p) => dec(p.data).n), [50, 49, 48]);

    // Knocked off, it recovers what it missed.
    await api(server, KEY, 'disconnect', { user: '', client: connected[0].client, disconnect: { code: 3011, reason: 'test' } });
    await waitFor(() => c.state !== 'connected', 5000, 'disconnect');
    for (let n = 51; n < 56; n++) await api(server, KEY, 'publish', { channel, data: { n } });
    await waitFor(() => subscribed.length === 2, 10000, 'resubscribed');
    await waitFor(() => got.length === 56, 5000, () => `recovered (got ${got.length})`);
    assert.deepEqual(got.slice(51), [51, 52, 53, 54, 55]);
    assert.deepEqual(subscribed[1], { wasRecovering: true, recovered: true });
  } finally {
    c.disconnect();
    j.disconnect();
  }
});

test('a protobuf publish whose data is not JSON is refused with 107, and the connection stays', async () => {
  const c = new ProtoCentrifuge(server.url, { websocket: WebSocket });
  c.connect();
  await new Promise((r) => c.once('connected', r));
  try {
    await assert.rejects(c.publish('any', new Uint8Array([0, 1, 2, 255])), (e) => e.code === 107);
    assert.equal(c.state, 'connected');
    await c.publish('any', enc({ ok: true }));
  } finally {
    c.disconnect();
  }
});

test('protobuf over http_stream: length-delimited replies in the chunks, commands by /emulation, recovery', async () => {
  const channel = 'proto-stream';
  const b = `http://${server.addr}`;
  const c = new ProtoCentrifuge([{ transport: 'http_stream', endpoint: `${b}/connection/http_stream` }], {
    emulationEndpoint: `${b}/emulation`, fetch, readableStream: ReadableStream,
    minReconnectDelay: 100, maxReconnectDelay: 300,
  });
  const connected = [];
  c.on('connected', (ctx) => connected.push(ctx));
  const got = [];
  const subscribed = [];
  const sub = c.newSubscription(channel);
  sub.on('publication', (ctx) => got.push(dec(ctx.data).n));
  sub.on('subscribed', (ctx) => subscribed.push({ wasRecovering: ctx.wasRecovering, recovered: ctx.recovered }));
  sub.subscribe();
  c.connect();
  try {
    await waitFor(() => subscribed.length === 1, 5000, 'subscribed');
    assert.equal(connected[0].transport, 'http_stream');
    for (let n = 0; n < 30; n++) await api(server, KEY, 'publish', { channel, data: { n } });
    await waitFor(() => got.length === 30, 5000, () => `30 (got ${got.length})`);
    assert.deepEqual(got, [...Array(30).keys()]);
    await sub.publish(enc({ n: 30 }));
    await waitFor(() => got.length === 31, 5000, 'own publication');
    const history = await sub.history({ limit: 2, reverse: true });
    assert.deepEqual(history.publications.map((p) => dec(p.data).n), [30, 29]);
    await api(server, KEY, 'disconnect', { user: '', client: connected[0].client, disconnect: { code: 3011, reason: 'test' } });
    await waitFor(() => c.state !== 'connected', 5000, 'disconnect');
    for (let n = 31; n < 34; n++) await api(server, KEY, 'publish', { channel, data: { n } });
    await waitFor(() => subscribed.length === 2, 10000, 'resubscribed');
    await waitFor(() => got.length === 34, 5000, () => `recovered (got ${got.length})`);
    assert.deepEqual(got.slice(31), [31, 32, 33]);
    assert.deepEqual(subscribed[1], { wasRecovering: true, recovered: true });
  } finally {
    c.disconnect();
  }
});
