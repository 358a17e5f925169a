// The TCP publisher protocol (docs/publisher-protocol.md) end to end with the
// Node example (examples/publishers/node/publisher.mjs) against the real
// ringcast binary; a raw WebSocket subscriber checks what reaches clients.
// No npm packages: the subscriber is a minimal RFC 6455 client over `net`.
//
//   RINGCAST_BIN=target/debug/ringcast node --test tests/publishers/
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { Publisher, PublisherError } from '../../examples/publishers/node/publisher.mjs';
// The sdk tests' harness starts the server (node built-ins only).
import { startServer as startRingcast } from '../sdk/harness.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const EXAMPLE = path.join(root, 'examples/publishers/node/publisher.mjs');
const API_KEY = 'test-publisher-key';

// ---- the server -------------------------------------------------------------

async function startServer(args = []) {
  const server = await startRingcast(['--api-key', API_KEY, ...args]);
  const [host, port] = server.publisherAddr.split(':');
  return {
    wsUrl: server.url,
    pub: { host, port: Number(port) },
    log: server.log,
    stop: server.stop,
  };
}

// ---- a raw WebSocket subscriber ------------------------------------------------

/** Connects, sends `{"id":1,"connect":{}}` and `{"id":2,"subscribe":...}`,
 * collects the channel's publications (`push.pub`), answers pings `{}`. */
class Subscriber {
  constructor(url, channel) {
    this.url = new URL(url);
    this.channel = channel;
    this.pubs = [];
    this.replies = new Map();
    this.waiters = [];
    this.closed = null;
  }

  async open() {
    const key = crypto.randomBytes(16).toString('base64');
    const sock = net.connect({ host: this.url.hostname, port: Number(this.url.port) });
    this.sock = sock;
    sock.setNoDelay(true);
    sock.write(
      `GET ${this.url.pathname} HTTP/1.1\r\nHost: ${this.url.host}\r\nUpgrade: websocket\r\n` +
        `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    let buf = Buffer.alloc(0);
    let upgraded = false;
    let message = [];
    await new Promise((resolve, reject) => {
      sock.on('error', reject);
      sock.on('close', () => {
        this.closed ??= 'closed';
        this._wake();
        reject(new Error('closed before the upgrade'));
      });
      sock.on('data', (chunk) => {
        buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
        if (!upgraded) {
          const end = buf.indexOf('\r\n\r\n');
          if (end < 0) return;
          const head = buf.subarray(0, end).toString();
          if (!/^HTTP\/1\.1 101/.test(head)) return reject(new Error(`upgrade refused: ${head}`));
          upgraded = true;
          buf = buf.subarray(end + 4);
          resolve();
        }
        let pos = 0;
        for (;;) {
          if (buf.length - pos < 2) break;
          const fin = buf[pos] & 0x80;
          const op = buf[pos] & 0x0f;
          let len = buf[pos + 1] & 0x7f;
          let hdr = 2;
          if (len === 126) {
            if (buf.length - pos < 4) break;
            len = buf.readUInt16BE(pos + 2);
            hdr = 4;
          } else if (len === 127) {
            if (buf.length - pos < 10) break;
            len = Number(buf.readBigUInt64BE(pos + 2));
            hdr = 10;
          }
          if (buf.length - pos < hdr + len) break;
          const payload = buf.subarray(pos + hdr, pos + hdr + len);
          pos += hdr + len;
          if (op === 0x8) {
            this.closed = `close frame ${len >= 2 ? payload.readUInt16BE(0) : ''}`;
            sock.end();
          } else if (op === 0x9) {
            this._send(0xa, payload);
          } else if (op === 0x1 || op === 0x0) {
            message.push(Buffer.from(payload));
            if (fin) {
              this._onText(Buffer.concat(message).toString('utf8'));
              message = [];
            }
          }
        }
        buf = buf.subarray(pos);
      });
    });
    this._sendJson({ id: 1, connect: {} });
    const c = await this._reply(1);
    assert.ok(c.connect, JSON.stringify(c));
    this._sendJson({ id: 2, subscribe: { channel: this.channel } });
    const s = await this._reply(2);
    assert.ok(s.subscribe, JSON.stringify(s));
    this.epoch = s.subscribe.epoch;
    return this;
  }

  _send(op, payload) {
    const mask = crypto.randomBytes(4);
    const len = payload.length;
    const hdr = len < 126 ? Buffer.from([0x80 | op, 0x80 | len]) : Buffer.alloc(len < 65536 ? 4 : 10);
    if (len >= 126 && len < 65536) {
      hdr[0] = 0x80 | op;
      hdr[1] = 0x80 | 126;
      hdr.writeUInt16BE(len, 2);
    } else if (len >= 65536) {
      hdr[0] = 0x80 | op;
      hdr[1] = 0x80 | 127;
      hdr.writeBigUInt64BE(BigInt(len), 2);
    }
    const masked = Buffer.alloc(len);
    for (let i = 0; i < len; i++) masked[i] = payload[i] ^ mask[i & 3];
    this.sock.write(Buffer.concat([hdr, mask, masked]));
  }

  _sendJson(obj) {
    this._send(0x1, Buffer.from(JSON.stringify(obj)));
  }

  _onText(text) {
    for (const line of text.split('\n')) {
      if (!line) continue;
      const msg = JSON.parse(line);
      if (msg.id !== undefined) this.replies.set(msg.id, msg);
      else if (msg.push) {
        if (msg.push.channel === this.channel && msg.push.pub) this.pubs.push(msg.push.pub);
      } else if (Object.keys(msg).length === 0) this._send(0x1, Buffer.from('{}')); // ping -> pong
    }
    this._wake();
  }

  _wake() {
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w();
  }

  _until(pred, ms, what) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
      const check = () => {
        if (pred()) {
          clearTimeout(timer);
          resolve();
        } else if (this.closed) {
          clearTimeout(timer);
          reject(new Error(`subscriber ${this.closed} while waiting for ${what}`));
        } else this.waiters.push(check);
      };
      check();
    });
  }

  async _reply(id) {
    await this._until(() => this.replies.has(id), 5000, `reply ${id}`);
    return this.replies.get(id);
  }

  async wait(n, ms) {
    await this._until(() => this.pubs.length >= n, ms, `${n} publications (have ${this.pubs.length})`);
    return this.pubs;
  }

  close() {
    this.sock?.destroy();
  }
}

function checkInOrder(pubs, n) {
  assert.equal(pubs.length, n);
  for (let i = 0; i < n; i++) assert.equal(pubs[i].data.seq, i, `publication ${i} out of order`);
  const offsets = pubs.map((p) => p.offset);
  for (let i = 1; i < n; i++) assert.ok(offsets[i] > offsets[i - 1], `offset ${i} not increasing`);
  return offsets;
}

// ---- tests --------------------------------------------------------------------

let server;
const cleanup = [];

before(async () => {
  // --max-queue 0: a burst of 20,000 pushes must not cut the subscriber as slow.
  server = await startServer(['--shards', '2', '--insecure', '--max-queue', '0']);
});

after(async () => {
  for (const c of cleanup) c.close();
  await server?.stop();
});

async function subscriber(channel) {
  const s = new Subscriber(server.wsUrl, channel);
  cleanup.push(s);
  return s.open();
}

async function publisher(apiKey = API_KEY) {
  const p = new Publisher({ ...server.pub, apiKey });
  cleanup.push(p);
  return p.connect();
}

test('the Node library publishes 20,000 pipelined; acks resolve in order and match the pushes', { timeout: 20000 }, async () => {
  const n = 20000;
  const sub = await subscriber('node-lib');
  const p = await publisher();
  // Every publish issued at once: 20,000 outstanding promises, one FIFO.
  const acks = await Promise.all(Array.from({ length: n }, (_, i) => p.publish('node-lib', { seq: i })));
  assert.equal(p.pending, 0);
  const ackOffsets = acks.map((a) => a.offset);
  for (let i = 1; i < n; i++) assert.ok(ackOffsets[i] > ackOffsets[i - 1]);
  // One stream: every ack carries the epoch the subscriber was given.
  assert.deepEqual(new Set(acks.map((a) => a.epoch)), new Set([sub.epoch]));
  const offsets = checkInOrder(await sub.wait(n, 15000), n);
  assert.deepEqual(offsets, ackOffsets);
  p.close();
});

test('publishMany keeps a window in flight and yields acks in order', { timeout: 20000 }, async () => {
  const n = 20000;
  const sub = await subscriber('node-many');
  const p = await publisher();
  const acks = [];
  function* items() {
    for (let i = 0; i < n; i++) {
      assert.ok(p.pending <= 256, `window exceeded: ${p.pending}`);
      yield { seq: i };
    }
  }
  for await (const ack of p.publishMany('node-many', items(), { window: 256 })) acks.push(ack);
  assert.equal(acks.length, n);
  const offsets = checkInOrder(await sub.wait(n, 15000), n);
  assert.deepEqual(offsets, acks.map((a) => a.offset));
  p.close();
});

test('the Node CLI publishes 20,000 received in order; last offset printed', { timeout: 20000 }, async () => {
  const n = 20000;
  const sub = await subscriber('node-cli');
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [EXAMPLE, '--host', server.pub.host, '--port', String(server.pub.port), '--key', API_KEY,
      '--channel', 'node-cli', '--count', String(n), '--window', '1024'],
    { timeout: 15000 },
  );
  const m = /published (\d+) messages to node-cli in .*: (\d+) msg\/s, last offset (\d+) epoch (\S+)/.exec(stdout);
  assert.ok(m, stdout);
  assert.equal(Number(m[1]), n);
  const offsets = checkInOrder(await sub.wait(n, 15000), n);
  assert.equal(offsets[n - 1], Number(m[3]));
});

test('a per-publish error rejects only its own promise; pings resolve in order', { timeout: 10000 }, async () => {
  const sub = await subscriber('node-err');
  const p = await publisher();
  const order = [];
  const track = (name, promise) =>
    promise.then(
      (v) => (order.push(name), v),
      (e) => (order.push(`${name}!`), e),
    );
  const results = await Promise.all([
    track('a', p.publish('node-err', { seq: 0 })),
    track('empty', p.publish('', { seq: -1 })),
    track('ping1', p.ping()),
    track('json', p.publish('node-err', Buffer.from('{not json'))),
    track('b', p.publish('node-err', { seq: 1 })),
    track('ping2', p.ping()),
  ]);
  assert.deepEqual(order, ['a', 'empty!', 'ping1', 'json!', 'b', 'ping2']);
  for (const e of [results[1], results[3]]) {
    assert.ok(e instanceof PublisherError);
    assert.equal(e.code, 107);
  }
  // The connection continues.
  const c = await p.publish('node-err', { seq: 2 });
  assert.ok(c.offset > results[4].offset && results[4].offset > results[0].offset);
  checkInOrder(await sub.wait(3, 5000), 3);
  p.close();
});

test('a wrong key rejects connect() with 101 and the server closes', { timeout: 10000 }, async () => {
  const p = new Publisher({ ...server.pub, apiKey: 'wrong-key' });
  await assert.rejects(p.connect(), (e) => e instanceof PublisherError && e.code === 101);
  assert.ok(p.closed);
  await assert.rejects(p.publish('x', {}), PublisherError);
});

test('publishes pending when the server closes are rejected, not left hanging', { timeout: 10000 }, async () => {
  const p = await publisher();
  const ok = p.publish('node-close', { seq: 0 });
  // An unknown frame type is a framing error: ERROR 107, then the server closes.
  const bad = p._enqueue(Buffer.from([0, 0, 0, 1, 0x42]), 0x83);
  bad.catch(() => {});
  const lost = p.publish('node-close', { seq: 1 });
  lost.catch(() => {});
  await ok;
  await assert.rejects(bad, (e) => e instanceof PublisherError && e.code === 107 && /^bad frame/.test(e.detail));
  await assert.rejects(lost, (e) => e instanceof PublisherError && /connection closed/.test(e.message));
  assert.ok(p.closed);
});
