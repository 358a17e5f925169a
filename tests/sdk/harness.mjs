// Starts the real ringcast binary on a free port and stops it after the test.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export function ringcastBin() {
  return process.env.RINGCAST_BIN || path.join(root, 'target/debug/ringcast');
}

export async function startServer(args) {
  const child = spawn(ringcastBin(), ['serve', '--port', '0', '--api-port', '0', '--publisher-port', '0',
    '--address', '127.0.0.1', '--no-pin', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, RUST_LOG: 'info' },
  });
  let log = '';
  let extra = [];
  const addr = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`ringcast did not start:\n${log}`)), 10000);
    child.stderr.on('data', (chunk) => {
      log += chunk;
      const m = /listening.*listen=([0-9.:]+)(?: extra=\[([^\]]*)\])?/.exec(log);
      if (m) {
        clearTimeout(timer);
        extra = m[2] ? [...m[2].matchAll(/"([^"]+)"/g)].map((x) => x[1]) : [];
        resolve(m[1]);
      }
    });
    child.on('exit', (code) => reject(new Error(`ringcast exited with ${code}:\n${log}`)));
  });
  return {
    url: `ws://${addr}/connection/websocket`,
    addr,
    get apiAddr() { return extra[0]; },
    log: () => log,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGKILL');
        await once(child, 'exit');
      }
    },
  };
}

export function waitFor(predicate, ms, what) {
  return new Promise((resolve, reject) => {
    const start = Date.now();
    const tick = () => {
      if (predicate()) return resolve();
      if (Date.now() - start > ms) return reject(new Error(`timed out waiting for ${what}`));
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
