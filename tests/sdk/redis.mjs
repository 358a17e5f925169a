// A throwaway redis-server for the scale-out tests: a free port, its own data
// directory, no RDB snapshots, AOF only when asked for. kill() is a SIGKILL
// (nothing is flushed that was not already fsynced), restart() brings it back
// on the same port with the same directory.
// startSentinel() runs a Sentinel the same way (its own writable config
// file), command() sends one command over raw RESP.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export function redisBin() {
  return process.env.REDIS_SERVER_BIN || '/usr/bin/redis-server';
}

/// A TCP port nothing listens on right now (bind port 0, read it, close).
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/// One raw `PING` over RESP: true when the server answers `+PONG`.
export function ping(port, ms = 500) {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host: '127.0.0.1' });
    let buf = '';
    const done = (ok) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), ms);
    sock.on('connect', () => sock.write('*1\r\n$4\r\nPING\r\n'));
    sock.on('data', (d) => {
      buf += d;
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG'));
    });
    sock.on('error', () => done(false));
    sock.on('close', () => done(false));
  });
}

async function untilPong(port, child, ms, log) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`redis-server exited (${child.exitCode ?? child.signalCode}):\n${log()}`);
    }
    if (await ping(port)) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`redis-server on ${port} did not answer PING within ${ms} ms:\n${log()}`);
}

// Servers and directories not stopped yet: killed and removed if this process
// exits first (a test that failed badly must not leave redis-server behind).
const live = new Map();
process.on('exit', () => {
  for (const [child, dir] of live) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/// Starts redis-server on a free port; `aof` turns on the append-only file
/// with an fsync per write (acknowledged writes survive a SIGKILL); `args`
/// go on its command line after ours (e.g. `['--replicaof', host, port]`).
export async function startRedis({ aof = false, args: more = [] } = {}) {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringcast-redis-'));
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '',
    '--appendonly', aof ? 'yes' : 'no', '--appendfsync', 'always',
    '--dir', dir, '--daemonize', 'no', ...more];
  return launch(port, dir, args, { aof });
}

/// Starts a Sentinel on a free port monitoring the master at
/// 127.0.0.1:`masterPort` as `name`, from a config file in its own
/// directory (Sentinel rewrites that file: it must be writable).
export async function startSentinel(masterPort, {
  name = 'mymaster', quorum = 2, downAfter = 1000, failoverTimeout = 5000,
} = {}) {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringcast-sentinel-'));
  const conf = path.join(dir, 'sentinel.conf');
  fs.writeFileSync(conf, [
    `port ${port}`,
    'bind 127.0.0.1',
    'daemonize no',
    `dir ${dir}`,
    `sentinel monitor ${name} 127.0.0.1 ${masterPort} ${quorum}`,
    `sentinel down-after-milliseconds ${name} ${downAfter}`,
    `sentinel failover-timeout ${name} ${failoverTimeout}`,
    `sentinel parallel-syncs ${name} 1`,
  ].join('\n') + '\n');
  return launch(port, dir, [conf, '--sentinel'], { conf });
}

/// Runs redis-server with `args` until it answers PING on `port`; the
/// handle's kill/restart/stop act on it, `dir` is removed by stop().
async function launch(port, dir, args, extra) {
  let child;
  let log = '';
  const spawnOnce = async () => {
    if (child) live.delete(child);
    child = spawn(redisBin(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    live.set(child, dir);
    const append = (chunk) => { log += chunk; };
    child.stdout.on('data', append);
    child.stderr.on('data', append);
    child.on('error', (e) => { log += `spawn error: ${e.message}\n`; });
    await untilPong(port, child, 10000, () => log);
  };
  const kill = async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    }
  };
  await spawnOnce();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    ...extra,
    log: () => log,
    get pid() { return child.pid; },
    alive: () => child.exitCode === null && child.signalCode === null,
    /// SIGKILL, resolves once the process is gone.
    kill,
    /// Starts it again on the same port and directory (an AOF is reloaded).
    async restart() {
      await kill();
      await spawnOnce();
    },
    /// Kills it and removes its directory.
    async stop() {
      await kill();
      live.delete(child);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/// Sends one command over raw RESP to 127.0.0.1:`port` and resolves with the
/// reply: a string, number, null or array (an error inside an array is an
/// Error); an error reply, a refused connection or no reply within `ms`
/// rejects.
export function command(port, args, ms = 2000) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ port, host: '127.0.0.1' });
    let buf = Buffer.alloc(0);
    let settled = false;
    const done = (err, value) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err); else resolve(value);
    };
    const timer = setTimeout(() => done(new Error(`${args[0]} on ${port}: no reply within ${ms} ms`)), ms);
    sock.on('connect', () => {
      const parts = [`*${args.length}\r\n`];
      for (const a of args) parts.push(`$${Buffer.byteLength(String(a))}\r\n${a}\r\n`);
      sock.write(parts.join(''));
    });
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const r = parseResp(buf, 0);
      if (!r) return;
      if (r[0] instanceof Error) done(r[0]); else done(null, r[0]);
    });
    sock.on('error', (e) => done(e));
    sock.on('close', () => done(new Error(`${args[0]} on ${port}: connection closed`)));
  });
}

/// One RESP2 value at `i`: [value, next index], or null while incomplete.
function parseResp(buf, i) {
  const nl = buf.indexOf('\r\n', i);
  if (nl < 0) return null;
  const line = buf.toString('utf8', i + 1, nl);
  const next = nl + 2;
  switch (String.fromCharCode(buf[i])) {
    case '+': return [line, next];
    case '-': return [new Error(line), next];
    case ':': return [Number(line), next];
    case '$': {
      const n = Number(line);
      if (n < 0) return [null, next];
      if (buf.length < next + n + 2) return null;
      return [buf.toString('utf8', next, next + n), next + n + 2];
    }
    case '*': {
      const n = Number(line);
      if (n < 0) return [null, next];
      const out = [];
      let j = next;
      for (let k = 0; k < n; k++) {
        const r = parseResp(buf, j);
        if (!r) return null;
        out.push(r[0]);
        j = r[1];
      }
      return [out, j];
    }
    default: return [new Error(`unexpected RESP: ${line}`), buf.length];
  }
}
