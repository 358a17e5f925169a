#!/usr/bin/env node
// A dependency-free client for ringcast's TCP publisher protocol
// (docs/publisher-protocol.md). Node >= 18, no npm packages: `net` and `Buffer`.
//
// Framing: every message is `u32 BE length | u8 type | body`, the length
// counting the type byte and the body. AUTH (the API key) first; then PUBLISH
// (`u16 BE channel_len | channel | JSON data`) and PING, each answered in
// request order with PUBLISHED (`u64 BE offset | u8 epoch_len | epoch`), PONG or
// ERROR (`u16 BE code | message`). A per-publish ERROR leaves the connection
// open; an ERROR for a bad AUTH or a bad frame is followed by the server
// closing it.
//
// Library:
//
//   import { Publisher } from './publisher.mjs';
//   const p = new Publisher({ host: '127.0.0.1', port: 9001, apiKey: 'KEY' });
//   await p.connect();
//   const { offset, epoch } = await p.publish('news', { hello: 'world' });
//   // pipelined: many outstanding promises, resolved in order
//   const acks = await Promise.all([1, 2, 3].map((n) => p.publish('news', { n })));
//   p.close();
//
// CLI:
//
//   node publisher.mjs --host 127.0.0.1 --port 9001 --key KEY --channel news --count 100000 [--window 1024]

import net from 'node:net';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

// Client -> server.
export const AUTH = 0x01;
export const PUBLISH = 0x02;
export const PING = 0x03;
// Server -> client.
export const AUTH_OK = 0x81;
export const PUBLISHED = 0x82;
export const PONG = 0x83;
export const ERROR = 0xe0;

const MAX_SERVER_FRAME = 1 << 20; // answers are tiny; anything bigger is garbage
const EMPTY = Buffer.alloc(0);

/** An ERROR frame from the server (`code`, `message`), or a local
 * protocol/connection failure (`code` 0). */
export class PublisherError extends Error {
  constructor(code, message, options) {
    super(`${code}: ${message}`, options);
    this.name = 'PublisherError';
    this.code = code;
    this.detail = message;
  }
}

/** One frame: u32 BE length (type byte + body), u8 type, body. */
export function encodeFrame(type, body = EMPTY) {
  const frame = Buffer.allocUnsafe(5 + body.length);
  frame.writeUInt32BE(1 + body.length, 0);
  frame[4] = type;
  body.copy(frame, 5);
  return frame;
}

/** A PUBLISH frame. `data` is any JSON value, or a Buffer of encoded JSON
 * (sent as is). */
export function encodePublish(channel, data) {
  const ch = Buffer.from(channel, 'utf8');
  if (ch.length > 0xffff) throw new RangeError('channel name longer than 65535 bytes');
  const json = Buffer.isBuffer(data) ? data : Buffer.from(JSON.stringify(data), 'utf8');
  const frame = Buffer.allocUnsafe(7 + ch.length + json.length);
  frame.writeUInt32BE(3 + ch.length + json.length, 0);
  frame[4] = PUBLISH;
  frame.writeUInt16BE(ch.length, 5);
  ch.copy(frame, 7);
  json.copy(frame, 7 + ch.length);
  return frame;
}

function decodeError(body) {
  if (body.length < 2) return new PublisherError(0, `malformed ERROR frame (${body.length} bytes)`);
  return new PublisherError(body.readUInt16BE(0), body.subarray(2).toString('utf8'));
}

function decodePublished(body) {
  if (body.length < 9 || body.length !== 9 + body[8]) {
    throw new PublisherError(0, `malformed PUBLISHED frame (${body.length} bytes)`);
  }
  const offset = body.readBigUInt64BE(0);
  return {
    // A Number while exact (offsets stay far below 2^53 in practice).
    offset: offset <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(offset) : offset,
    epoch: body.subarray(9).toString('latin1'),
  };
}

/** One authenticated publisher connection. Requests are written in batches
 * (everything issued in one tick goes out in one write) and answered in order:
 * a FIFO of pending resolvers is shifted once per answer. */
export class Publisher {
  constructor(hostOrOpts = {}, port, apiKey) {
    const o = typeof hostOrOpts === 'string' ? { host: hostOrOpts, port, apiKey } : hostOrOpts;
    this.host = o.host ?? '127.0.0.1';
    this.port = o.port ?? 9001;
    this.apiKey = o.apiKey ?? '';
    this.connectTimeout = o.connectTimeout ?? 10000;
    this.socket = null;
    this.closed = false;
    this._pending = []; // FIFO of { expect, resolve, reject }
    this._head = 0; // index of the oldest pending entry (compacted lazily)
    this._out = []; // frames issued this tick, flushed on nextTick
    this._flushScheduled = false;
    this._rbuf = EMPTY;
    this._lastError = null;
  }

  /** Requests sent and not yet answered. */
  get pending() {
    return this._pending.length - this._head;
  }

  /** Connect and authenticate (resolves on AUTH_OK, rejects on ERROR 101). */
  connect() {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: this.host, port: this.port });
      this.socket = socket;
      socket.setNoDelay(true);
      const timer = setTimeout(() => {
        const err = new PublisherError(0, `connect timed out after ${this.connectTimeout} ms`);
        socket.destroy();
        this._fail(err);
      }, this.connectTimeout);
      socket.on('data', (chunk) => this._onData(chunk));
      socket.on('error', (e) => this._fail(new PublisherError(0, `connection lost: ${e.message}`, { cause: e })));
      socket.on('close', () => {
        clearTimeout(timer);
        const last = this._lastError;
        this._fail(new PublisherError(0, `connection closed${last ? ` (after ERROR ${last.code}: ${last.detail})` : ''}`));
      });
      this._enqueue(encodeFrame(AUTH, Buffer.from(this.apiKey, 'utf8')), AUTH_OK).then(
        () => {
          clearTimeout(timer);
          resolve(this);
        },
        (e) => {
          clearTimeout(timer);
          socket.destroy();
          this._fail(e);
          reject(e);
        },
      );
    });
  }

  /** Publish one message; resolves with `{offset, epoch}` in request order,
   * rejects with PublisherError (107 for a bad channel or data: the connection
   * stays usable). Does not wait: call it many times to pipeline. */
  publish(channel, data) {
    let frame;
    try {
      frame = encodePublish(channel, data);
    } catch (e) {
      return Promise.reject(e);
    }
    return this._enqueue(frame, PUBLISHED);
  }

  /** PING; resolves on the PONG, which comes back in order with the acks. */
  ping() {
    return this._enqueue(encodeFrame(PING), PONG);
  }

  /** Publish every item of `items` (sync or async iterable) with up to
   * `window` in flight; yields `{offset, epoch}` per item, in order. A
   * per-publish error is thrown (the rest stay in flight and are answered). */
  async *publishMany(channel, items, { window = 1024 } = {}) {
    const inflight = [];
    let head = 0;
    for await (const data of items) {
      const p = this.publish(channel, data);
      p.catch(() => {}); // handled when its turn comes; avoids unhandled-rejection noise
      inflight.push(p);
      if (inflight.length - head >= window) {
        yield await inflight[head];
        inflight[head++] = undefined;
        if (head > 4096) inflight.splice(0, head), (head = 0);
      }
    }
    while (head < inflight.length) {
      yield await inflight[head];
      inflight[head++] = undefined;
    }
  }

  /** Close now; anything still pending rejects. */
  close() {
    if (this.socket) this.socket.destroy();
    this._fail(new PublisherError(0, 'connection closed'));
  }

  /** Wait until the socket's write buffer has drained (for producers that
   * want to bound memory by bytes rather than by a window). */
  drained() {
    if (!this.socket || !this.socket.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => this.socket.once('drain', resolve));
  }

  // -- internals -------------------------------------------------------------

  _enqueue(frame, expect) {
    if (this.closed) return Promise.reject(new PublisherError(0, 'connection closed'));
    if (!this.socket) return Promise.reject(new PublisherError(0, 'not connected: call connect() first'));
    return new Promise((resolve, reject) => {
      this._pending.push({ expect, resolve, reject });
      this._out.push(frame);
      if (!this._flushScheduled) {
        this._flushScheduled = true;
        process.nextTick(() => this._flush());
      }
    });
  }

  _flush() {
    this._flushScheduled = false;
    if (this.closed || this._out.length === 0) return;
    const out = this._out.length === 1 ? this._out[0] : Buffer.concat(this._out);
    this._out = [];
    this.socket.write(out);
  }

  _onData(chunk) {
    let buf = this._rbuf.length ? Buffer.concat([this._rbuf, chunk]) : chunk;
    let pos = 0;
    while (buf.length - pos >= 5) {
      const length = buf.readUInt32BE(pos);
      if (length < 1 || length > MAX_SERVER_FRAME) {
        this.socket.destroy();
        this._fail(new PublisherError(0, `bad frame length from server: ${length}`));
        return;
      }
      if (buf.length - pos < 4 + length) break;
      const type = buf[pos + 4];
      const body = buf.subarray(pos + 5, pos + 4 + length);
      pos += 4 + length;
      this._answer(type, body);
      if (this.closed) return;
    }
    // Keep the unparsed tail (copied, so the big chunk can be freed).
    this._rbuf = pos === buf.length ? EMPTY : Buffer.from(buf.subarray(pos));
  }

  _answer(type, body) {
    if (this._head >= this._pending.length) {
      this.socket.destroy();
      this._fail(new PublisherError(0, `unsolicited frame type 0x${type.toString(16)}`));
      return;
    }
    const entry = this._pending[this._head];
    this._pending[this._head++] = undefined;
    if (this._head > 4096 && this._head * 2 > this._pending.length) {
      this._pending = this._pending.slice(this._head);
      this._head = 0;
    }
    if (type === ERROR) {
      const err = decodeError(body);
      this._lastError = err;
      entry.reject(err);
    } else if (type === entry.expect) {
      try {
        entry.resolve(type === PUBLISHED ? decodePublished(body) : undefined);
      } catch (e) {
        entry.reject(e);
        this.socket.destroy();
        this._fail(e);
      }
    } else {
      const err = new PublisherError(0, `unexpected frame type 0x${type.toString(16)} (expected 0x${entry.expect.toString(16)})`);
      entry.reject(err);
      this.socket.destroy();
      this._fail(err);
    }
  }

  _fail(err) {
    this.closed = true;
    this._out = [];
    const rest = this._pending.slice(this._head);
    this._pending = [];
    this._head = 0;
    for (const e of rest) if (e) e.reject(err);
  }
}

async function main() {
  const { values } = parseArgs({
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '9001' },
      key: { type: 'string' },
      channel: { type: 'string', default: 'news' },
      count: { type: 'string', default: '100000' },
      window: { type: 'string', default: '1024' },
    },
  });
  if (!values.key) {
    console.error('usage: node publisher.mjs --key KEY [--host H] [--port P] [--channel C] [--count N] [--window W]');
    process.exit(2);
  }
  const count = Number(values.count);
  const window = Number(values.window);
  const p = new Publisher({ host: values.host, port: Number(values.port), apiKey: values.key });
  try {
    await p.connect();
    const t0 = process.hrtime.bigint();
    let n = 0;
    let last = { offset: undefined, epoch: undefined };
    function* messages() {
      for (let i = 0; i < count; i++) yield { seq: i };
    }
    for await (const ack of p.publishMany(values.channel, messages(), { window })) {
      n++;
      last = ack;
    }
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    console.log(
      `published ${n} messages to ${values.channel} in ${dt.toFixed(3)} s: ${Math.round(n / dt)} msg/s, ` +
        `last offset ${last.offset} epoch ${last.epoch}`,
    );
  } catch (e) {
    console.error(`error ${e.code ?? 0}: ${e.detail ?? e.message}`);
    process.exitCode = 1;
  } finally {
    p.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}
