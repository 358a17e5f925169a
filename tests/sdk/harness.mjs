// Starts the real ringcast binary on a free port and stops it after the test.
import { spawn } from 'node:child_process';
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
