// A throwaway redis-server for the scale-out tests: a free port, its own data
// directory, no RDB snapshots, AOF only when asked for. kill() is a SIGKILL
// (nothing is flushed that was not already fsynced), restart() brings it back
// on the same port with the same directory.
// startSentinel() runs a Sentinel the same way (its own writable config
// file), startRedisCluster() a Redis Cluster of such servers (created with
// redis-cli --cluster create), command() sends one command over raw RESP.
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
/// go on its command line after ours (e.g. `['--replicaof', host, port]`),
/// or `args(dir)` gives them (or a promise of them), for options naming
/// files in its directory or ports of their own.
///
/// A port found free can be taken before redis-server binds it (another
/// process's outgoing connection gets it as its ephemeral port): a server
/// that exits with "Address already in use" is started again on new ports,
/// up to 5 times.
export async function startRedis({ aof = false, args: more = [] } = {}) {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringcast-redis-'));
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '',
      '--appendonly', aof ? 'yes' : 'no', '--appendfsync', 'always',
      '--dir', dir, '--daemonize', 'no', ...(typeof more === 'function' ? await more(dir) : more)];
    try {
      return await launch(port, dir, args, { aof });
    } catch (e) {
      fs.rmSync(dir, { recursive: true, force: true });
      if (attempt >= 5 || !/Address already in use/.test(e.message)) throw e;
    }
  }
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
  try {
    await spawnOnce();
  } catch (e) {
    await kill();
    live.delete(child);
    throw e;
  }
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

export function redisCliBin() {
  return process.env.REDIS_CLI_BIN || '/usr/bin/redis-cli';
}

/// Runs `redis-cli` with `args` to its end (at most `ms`): resolves with its
/// output, rejects with it when it fails.
function redisCli(args, ms = 30000) {
  return new Promise((resolve, reject) => {
    const child = spawn(redisCliBin(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.on('error', (e) => { clearTimeout(timer); reject(new Error(`redis-cli: ${e.message}`)); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`redis-cli ${args.join(' ')} failed (${code ?? signal}):\n${out}`));
    });
  });
}

/// One node of a CLUSTER NODES reply: id, port, flags (an array: myself,
/// master, slave, fail, fail?, ...), the id of its master ('-' for a
/// master), link state and slot ranges ([from, to], importing/migrating
/// entries left out).
export function parseClusterNodes(text) {
  return text.trim().split('\n').filter(Boolean).map((line) => {
    const [id, addr, flags, master, , , epoch, link, ...slots] = line.trim().split(' ');
    return {
      id,
      port: Number(/:(\d+)@/.exec(addr)?.[1]),
      flags: flags.split(','),
      master,
      epoch: Number(epoch),
      link,
      slots: slots.filter((s) => !s.startsWith('[')).map((s) => {
        const [a, b = a] = s.split('-').map(Number);
        return [a, b];
      }),
    };
  });
}

/// CLUSTER INFO as an object (`cluster_state: 'ok'`, numbers as numbers).
export async function clusterInfo(port, ms) {
  const text = await command(port, ['CLUSTER', 'INFO'], ms);
  return Object.fromEntries(text.split('\r\n').filter(Boolean).map((l) => {
    const [k, v] = l.split(':');
    return [k, /^\d+$/.test(v) ? Number(v) : v];
  }));
}

/// A Redis Cluster of `masters` masters with `replicas` replicas each, all
/// on 127.0.0.1, each node a startRedis() server (own directory and port,
/// cluster bus on another free port) with `--cluster-node-timeout
/// nodeTimeout`; created with `redis-cli --cluster create`. Resolves once
/// every node says `cluster_state:ok` with all 16384 slots, knows every
/// node, and every replica's link to its master is up.
/// The handle: `nodes` (the server handles), `urls` (seed URLs), `masters()`
/// (the live nodes that say ROLE master and own slots), `masterOfSlot(slot)`,
/// `slotOf(key)`, `masterOfKey(key)`, `replicasOf(master)`, `ready()` (the
/// readiness check above, on the live nodes: resolves true or with what is
/// missing), `nodesView()` (CLUSTER NODES of a live node, parsed) and
/// `stop()` (every node stopped, directories removed). `args` go on every
/// node's command line after ours.
export async function startRedisCluster({ masters = 3, replicas = 1, nodeTimeout = 1000, args: more = [] } = {}) {
  const count = masters * (1 + replicas);
  const nodes = [];
  const stop = () => Promise.all(nodes.map((n) => n.stop()));
  try {
    for (let i = 0; i < count; i++) {
      // The bus port is not port + 10000 (that may be above 65535).
      let bus;
      nodes.push(await startRedis({
        args: async (dir) => ['--cluster-enabled', 'yes', '--cluster-config-file', path.join(dir, 'nodes.conf'),
          '--cluster-port', String(bus = await freePort()),
          '--cluster-node-timeout', String(nodeTimeout),
          // Replicas sync at once, and any replica may take over.
          '--repl-diskless-sync-delay', '0', '--cluster-replica-validity-factor', '0', ...more],
      }));
      nodes.at(-1).busPort = bus;
    }
    await redisCli(['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`),
      '--cluster-replicas', String(replicas), '--cluster-yes']);
  } catch (e) {
    await stop();
    throw e;
  }

  const live = () => nodes.filter((n) => n.alive());
  /// CLUSTER NODES of `node`, parsed.
  const view = async (node) => parseClusterNodes(await command(node.port, ['CLUSTER', 'NODES']));
  /// The live nodes that say they are masters, each with its own view of its slots.
  const mastersWithSlots = async () => {
    const all = await Promise.all(live().map(async (n) => {
      try {
        const role = await command(n.port, ['ROLE'], 1000);
        if (role[0] !== 'master') return null;
        const me = (await view(n)).find((x) => x.flags.includes('myself'));
        return me && me.slots.length > 0 ? { node: n, slots: me.slots } : null;
      } catch {
        return null;
      }
    }));
    return all.filter(Boolean);
  };
  const slotOf = async (key) => {
    let err;
    for (const n of live()) {
      try { return await command(n.port, ['CLUSTER', 'KEYSLOT', key], 1000); } catch (e) { err = e; }
    }
    throw err ?? new Error('no live node');
  };
  const masterOfSlot = async (slot) => {
    const owners = (await mastersWithSlots()).filter((m) => m.slots.some(([a, b]) => slot >= a && slot <= b));
    if (owners.length !== 1) {
      throw new Error(`slot ${slot}: ${owners.length} masters claim it (${owners.map((o) => o.node.port)})`);
    }
    return owners[0].node;
  };

  const handle = {
    nodes,
    urls: nodes.map((n) => n.url),
    async masters() {
      return (await mastersWithSlots()).map((m) => m.node);
    },
    masterOfSlot,
    slotOf,
    async masterOfKey(key) {
      return masterOfSlot(await slotOf(key));
    },
    /// The nodes whose ROLE names `master` as their master.
    async replicasOf(master) {
      const out = [];
      for (const n of live()) {
        try {
          const role = await command(n.port, ['ROLE'], 1000);
          if (role[0] === 'slave' && Number(role[2]) === master.port) out.push(n);
        } catch { /* not answering */ }
      }
      return out;
    },
    async nodesView() {
      let err;
      for (const n of live()) {
        try { return await view(n); } catch (e) { err = e; }
      }
      throw err ?? new Error('no live node');
    },
    /// True when every live node says cluster_state:ok with 16384 slots ok,
    /// knows all nodes (a failed one included) and sees `masters` masters
    /// with slots, and every live replica's link to its master is up;
    /// otherwise a string saying what is not so (for eventually()).
    async ready() {
      const problems = [];
      await Promise.all(live().map(async (n) => {
        try {
          const info = await clusterInfo(n.port, 1000);
          if (info.cluster_state !== 'ok' || info.cluster_slots_assigned !== 16384 || info.cluster_slots_ok !== 16384
            || info.cluster_known_nodes !== count || info.cluster_size !== masters) {
            problems.push(`${n.port}: state ${info.cluster_state}, slots assigned ${info.cluster_slots_assigned} ok ${info.cluster_slots_ok}, `
              + `known ${info.cluster_known_nodes}, size ${info.cluster_size}`);
          }
          const role = await command(n.port, ['ROLE'], 1000);
          if (role[0] === 'slave' && role[3] !== 'connected') problems.push(`${n.port}: replica of ${role[2]} ${role[3]}`);
        } catch (e) {
          problems.push(`${n.port}: ${e.message}`);
        }
      }));
      return problems.length ? problems.sort().join('; ') : true;
    },
    stop,
  };

  const deadline = Date.now() + 30000;
  let last;
  for (;;) {
    last = await handle.ready();
    if (last === true) {
      const ms = await handle.masters();
      if (ms.length === masters) break;
      last = `${ms.length} masters with slots`;
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`Redis Cluster not ready within 30 s: ${last}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return handle;
}
