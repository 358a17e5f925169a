// The Node test-support layer: starts the real ringcast binary on free ports
// (stopped after the test), waits that poll a condition to a deadline, the
// server API, HS256 tokens, and one raw client-protocol connection (openRaw).
import { spawn } from 'node:child_process';
import WebSocket from 'ws';
import { once } from 'node:events';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export function ringcastBin() {
  return process.env.RINGCAST_BIN || path.join(root, 'target/debug/ringcast');
}

/// Starts `ringcast serve` on ephemeral ports (`args` after ours) and
/// resolves once its ready line (one JSON object on stdout) names every
/// address. The handle: `url`, `addr`, `apiAddr`, `publisherAddr`, `ready`
/// (the whole object), `log()` (stderr so far), `alive()`, `signal(sig)`
/// (e.g. SIGTERM, a graceful shutdown), `exited` (resolves with { code,
/// signal } once the process has ended), `stop()` (SIGKILL; also done when
/// this process exits).
export async function startServer(args) {
  return startRingcast(['serve', '--port', '0', '--api-port', '0', '--publisher-port', '0',
    '--address', '127.0.0.1', '--no-pin', ...args]);
}

/// Starts the ringcast binary with exactly `argv` (any mode) and resolves
/// once its ready line names its addresses; the same handle as startServer.
export async function startRingcast(argv) {
  const child = spawn(ringcastBin(), argv, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.RINGCAST_TEST_RUST_LOG || 'info' },
  });
  live.add(child);
  child.on('exit', () => live.delete(child));
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
  let log = '';
  child.stderr.on('data', (chunk) => { log += chunk; });
  const ready = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`ringcast did not start:\n${log}`)), 10000);
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      for (const line of out.split('\n').slice(0, -1)) {
        let v;
        try { v = JSON.parse(line); } catch { continue; }
        if (v.ready) {
          clearTimeout(timer);
          resolve(v.ready);
        }
      }
    });
    child.on('exit', (code) => reject(new Error(`ringcast exited with ${code}:\n${log}`)));
  });
  return {
    url: `ws://${ready.listen}/connection/websocket`,
    addr: ready.listen,
    apiAddr: ready.api,
    publisherAddr: ready.publisher,
    ready,
    log: () => log,
    /// True while the process has not exited.
    alive: () => child.exitCode === null && child.signalCode === null,
    signal: (sig) => child.kill(sig),
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = once(child, 'exit');
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}

// Servers not stopped yet are killed if this process exits first.
const live = new Set();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/// Polls `predicate()` every 10 ms until it is truthy or `ms` have passed;
/// `what` (or `what()`, called at the timeout) names it in the error.
export function waitFor(predicate, ms, what) {
  return new Promise((resolve, reject) => {
    const start = Date.now();
    const tick = () => {
      if (predicate()) return resolve();
      if (Date.now() - start > ms) {
        return reject(new Error(`timed out waiting for ${typeof what === 'function' ? what() : what}`));
      }
      setTimeout(tick, 10);
    };
    tick();
  });
}

/// Calls the server API (`POST /api/<method>`).
export async function api(server, key, method, body) {
  const res = await fetch(`http://${server.apiAddr}/api/${method}`, {
    method: 'POST',
    headers: { 'X-API-Key': key, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = await res.json();
  if (json.error) throw new Error(`${method}: ${JSON.stringify(json.error)}`);
  return json.result;
}

/// Starts ringcast with a TOML config written to a temporary directory,
/// removed again by `stop()`.
export async function startWithConfig(toml, args = []) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringcast-test-'));
  const cfg = path.join(dir, 'ringcast.toml');
  fs.writeFileSync(cfg, toml);
  const server = await startServer([...args, '--config', cfg]);
  const stop = server.stop;
  server.stop = async () => {
    await stop();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  return server;
}

/// Starts `n` ringcast nodes from one TOML config, each with its own
/// `--node-name` (`${prefix}-0`, `${prefix}-1`, ...; the name is on
/// `server.name`). `args` go to every node (e.g. the broker flags).
export async function startNodes(n, toml, args = [], { prefix = 'node' } = {}) {
  const nodes = [];
  try {
    for (let i = 0; i < n; i++) {
      const name = `${prefix}-${i}`;
      const server = await startWithConfig(toml, [...args, '--node-name', name]);
      server.name = name;
      nodes.push(server);
    }
  } catch (e) {
    await Promise.all(nodes.map((s) => s.stop()));
    throw e;
  }
  return nodes;
}

/// `GET /health` on the API port: `{ status, body }`, `body` parsed as JSON
/// when it is JSON, the text otherwise. `status` is 0 when the request itself
/// failed (the node is not answering).
export async function health(server) {
  try {
    const res = await fetch(`http://${server.apiAddr}/health`, { signal: AbortSignal.timeout(2000) });
    const text = await res.text();
    let body = text;
    try { body = JSON.parse(text); } catch { /* not JSON */ }
    return { status: res.status, body };
  } catch (e) {
    return { status: 0, body: String(e) };
  }
}

/// Like waitFor, for an async condition: polls `predicate()` (awaited; a
/// throw counts as false) until it is truthy or `ms` have passed. Resolves
/// with the truthy value; the timeout error carries the last value or error.
/// `what` may be a function, called for the message at the timeout.
export async function eventually(predicate, ms, what, every = 50) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const v = await predicate();
      if (v) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${typeof what === 'function' ? what() : what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    }
    await new Promise((r) => setTimeout(r, every));
  }
}

/// An HS256 JWT signed with `secret` (connection tokens: `{ sub: user }`).
export function hs256Token(secret, claims) {
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const msg = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  return `${msg}.${crypto.createHmac('sha256', secret).update(msg).digest('base64url')}`;
}

/// A raw client-protocol connection (JSON, one message per line) on a `ws`
/// WebSocket, for what the SDKs would not send or hide. Resolves once open
/// (rejects on an error first, or after `ms`); it answers the server's
/// pings (`{}`) unless `pong: false`; other `opts` go to `ws` (e.g.
/// `localAddress`, `headers`). The handle:
/// - `send(x)`: a command object, an array of them (one frame, one per
///   line), or a string sent as it is;
/// - `lines`: every message received so far, parsed (a line that is not
///   JSON is kept as `{ raw }`), server pings (`{}`) included;
/// - `next(pred, ms, what)`: the first message (seen or to come) for which
///   `pred` holds; rejects after `ms` or when the socket closes first;
/// - `reply(id, ms)`: `next` for the reply to command `id`;
/// - `pushes()`: the messages that are not replies or pings;
/// - `closed`: resolves with `{ code, reason }` once the socket is closed;
/// - `close(code, reason)`, `terminate()`, and `ws` itself.
export function openRaw(url, { ms = 5000, pong = true, ...opts } = {}) {
  const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: ms, ...opts });
  const lines = [];
  const waiters = new Set();
  let end = null;
  const closed = new Promise((resolve) => {
    ws.once('close', (code, reason) => {
      end = { code, reason: String(reason) };
      for (const w of waiters) w.fail(`the socket closed (${end.code} ${end.reason})`);
      resolve(end);
    });
  });
  ws.on('message', (data) => {
    for (const line of String(data).split('\n')) {
      if (!line) continue;
      let m;
      try { m = JSON.parse(line); } catch { m = { raw: line }; }
      lines.push(m);
      if (pong && line === '{}') ws.send('{}');
      for (const w of waiters) if (w.pred(m)) w.done(m);
    }
  });
  const next = (pred, wait = 5000, what = 'a message') => {
    const seen = lines.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const w = {
        pred,
        done: (m) => { clearTimeout(w.timer); waiters.delete(w); resolve(m); },
        fail: (why) => {
          clearTimeout(w.timer);
          waiters.delete(w);
          reject(new Error(`no ${typeof what === 'function' ? what() : what}: ${why}; got ${JSON.stringify(lines).slice(0, 2000)}`));
        },
      };
      if (end) return w.fail(`the socket closed (${end.code} ${end.reason})`);
      w.timer = setTimeout(() => w.fail(`timed out after ${wait} ms`), wait);
      waiters.add(w);
    });
  };
  const raw = {
    ws,
    lines,
    closed,
    next,
    reply: (id, wait = 5000) => next((m) => m.id === id, wait, `reply to id ${id}`),
    pushes: () => lines.filter((m) => m.id === undefined && Object.keys(m).length > 0),
    send(x) {
      if (typeof x === 'string') return ws.send(x);
      return ws.send((Array.isArray(x) ? x : [x]).map((c) => JSON.stringify(c)).join('\n'));
    },
    close: (code, reason) => ws.close(code, reason),
    terminate: () => ws.terminate(),
  };
  return new Promise((resolve, reject) => {
    ws.once('open', () => { ws.off('error', reject); ws.on('error', () => {}); resolve(raw); });
    ws.once('error', reject);
  });
}
