// The same flow in headless Chromium: a page served on localhost drives
// centrifuge-js's browser bundle against ringcast.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { Centrifuge } from 'centrifuge';
import WebSocket from 'ws';
import { startServer } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
let server, web, browser, publisher;

const page = `<!doctype html><html><head><meta charset="utf-8"><title>ringcast e2e</title>
<script src="/centrifuge.js"></script></head><body><pre id="log"></pre><script>
window.received = [];
window.status = 'starting';
const params = new URLSearchParams(location.search);
const c = new Centrifuge(params.get('ws'));
c.on('connected', () => { window.status = 'connected'; });
c.on('disconnected', (ctx) => { window.status = 'disconnected ' + ctx.code; });
const sub = c.newSubscription('browser-room');
sub.on('publication', (ctx) => {
  window.received.push({ data: ctx.data, offset: String(ctx.offset) });
  document.getElementById('log').textContent += JSON.stringify(ctx.data) + '\\n';
});
sub.on('subscribed', () => { window.status = 'subscribed'; });
sub.subscribe();
c.connect();
window.presence = async () => Object.keys((await sub.presence()).clients).length;
window.publish = (data) => sub.publish(data);
</script></body></html>`;

before(async () => {
  server = await startServer(['--shards', '2', '--insecure', '--presence']);
  const bundle = fs.readFileSync(path.join(here, 'node_modules/centrifuge/dist/centrifuge.js'));
  web = http.createServer((req, res) => {
    if (req.url.startsWith('/centrifuge.js')) {
      res.writeHead(200, { 'content-type': 'application/javascript' });
      return res.end(bundle);
    }
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(page);
  });
  await new Promise((r) => web.listen(0, '127.0.0.1', r));
  browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  if (publisher) publisher.disconnect();
  if (browser) await browser.close();
  if (web) web.close();
  if (server) await server.stop();
});

test('a browser page subscribes, receives publications in order, and sees presence', async () => {
  const pages = [];
  for (let i = 0; i < 4; i++) {
    const p = await browser.newPage();
    await p.goto(`http://127.0.0.1:${web.address().port}/?ws=${encodeURIComponent(server.url)}`);
    pages.push(p);
  }
  for (const p of pages) {
    await p.waitForFunction(() => window.status === 'subscribed', null, { timeout: 10000 });
  }
  publisher = new Centrifuge(server.url, { websocket: WebSocket });
  publisher.connect();
  await new Promise((r) => publisher.once('connected', r));
  const total = 100;
  for (let i = 0; i < total; i++) {
    await publisher.publish('browser-room', { n: i });
  }
  // One page publishes too, through its own subscription.
  await pages[0].evaluate(() => window.publish({ n: 'from-page' }));
  for (const p of pages) {
    await p.waitForFunction((n) => window.received.length >= n, total + 1, { timeout: 10000 });
    const got = await p.evaluate(() => window.received);
    assert.deepEqual(got.slice(0, total).map((r) => r.data.n), [...Array(total).keys()]);
    assert.equal(got[total].data.n, 'from-page');
    const offsets = got.map((r) => BigInt(r.offset));
    for (let i = 1; i < offsets.length; i++) assert.ok(offsets[i] > offsets[i - 1]);
  }
  assert.equal(await pages[1].evaluate(() => window.presence()), 4);
  const text = await pages[2].textContent('#log');
  assert.match(text, /"n":99/);
});
