// An application backend for the proxy and ws2api tests: a real HTTP server
// on a free loopback port (Node's http), answering Centrifugo's proxy
// protocol. What it answers is decided by `routes` (path → handler), which a
// test may replace at any time; every request is recorded in `requests`,
// `open` counts the requests not answered yet, `answered` those answered,
// and `peak` is the most requests it has had open at once (the most
// connections ringcast used).
//
// A handler gets { path, method, headers, body (parsed JSON, or the raw
// text), raw } and returns { status = 200, json | text, delay = 0 } (or
// `null`: drop the connection without an answer).
import http from 'node:http';
import { once } from 'node:events';

export async function startBackend(routes = {}) {
  const backend = {
    routes: { ...routes },
    requests: [],
    open: 0,
    answered: 0,
    peak: 0,
    sockets: new Set(),
    socketsSeen: 0,
  };
  const server = http.createServer(async (req, res) => {
    backend.open++;
    backend.peak = Math.max(backend.peak, backend.open);
    try {
      const chunks = [];
      for await (const c of req) chunks.push(c);
      const raw = Buffer.concat(chunks).toString();
      let body = raw;
      try { body = JSON.parse(raw); } catch { /* raw text */ }
      const path = req.url;
      const entry = { path, method: req.method, headers: req.headers, body, raw };
      backend.requests.push(entry);
      const route = backend.routes[path] ?? backend.routes[path.split('/').slice(0, 2).join('/')] ?? backend.routes['*'];
      const answer = route ? await route(entry) : { status: 404, text: 'no route' };
      if (answer === null) {
        req.socket.destroy();
        return;
      }
      if (answer.delay) await new Promise((r) => setTimeout(r, answer.delay));
      if (answer.json !== undefined) {
        res.writeHead(answer.status ?? 200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(answer.json));
      } else {
        res.writeHead(answer.status ?? 200, { 'content-type': 'text/plain' });
        res.end(answer.text ?? '');
      }
      backend.answered++;
    } finally {
      backend.open--;
    }
  });
  server.keepAliveTimeout = 60_000;
  server.on('connection', (s) => {
    backend.sockets.add(s);
    backend.socketsSeen++;
    s.on('close', () => backend.sockets.delete(s));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  backend.port = server.address().port;
  backend.url = (path) => `http://127.0.0.1:${backend.port}${path}`;
  /// Requests to `path` so far.
  backend.calls = (path) => backend.requests.filter((r) => r.path === path);
  backend.stop = async () => {
    for (const s of backend.sockets) s.destroy();
    server.close();
  };
  return backend;
}

/// A loopback port nothing listens on (bound, then closed).
export async function deadPort() {
  const s = http.createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = s.address().port;
  s.close();
  await once(s, 'close');
  return port;
}
