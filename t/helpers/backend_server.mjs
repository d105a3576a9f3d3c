// An HTTP backend for proxy tests, run as its own process by t/helpers/backend.ts:
//   node backend_server.mjs [--keepalive-timeout MS]
// It listens on an ephemeral 127.0.0.1 port, prints the port on stdout (one
// line), and exits when its stdin closes (the test process went away) or on
// SIGTERM. Keep-alive is on (Node's HTTP/1.1 default).
//
// Routes:
//   /echo, /echo/*   200, JSON: method, url, httpVersion, rawHeaders, body (latin1), bodyLength
//   /bytes?n=N       200, N bytes (byte i is 'a' + i % 26), Content-Length, streamed
//   /chunked?n=K     200, chunked, K pieces "piece I\n" (default 3)
//   /slow?ms=M&n=K   200, chunked, K pieces "drip I\n" written M ms apart (defaults 100, 5);
//                    &delay=D waits D ms before the response header
//   /cut             200, Content-Length 1000, 500 bytes, then the connection is destroyed
//   /status?code=C   status C, body "status C\n" (none for 204 and 304)
//   /redirect?to=U   302, Location U (default /echo)
//   /cookie?v=V      200, one Set-Cookie line per v
//   /__count         JSON {requests, connections}: requests served and connections
//                    accepted, neither counting /__count itself
//   anything else    404, "not found\n"

import http from 'node:http';

const MAX_BYTES = 1 << 30;
const MAX_PIECES = 10000;

let keepAliveTimeout = 30000;
const ka = process.argv.indexOf('--keepalive-timeout');
if (ka > 0) keepAliveTimeout = Number(process.argv[ka + 1]);

let requests = 0;
let connections = 0;
/** sockets that have carried a request */
const seen = new WeakSet();

function intParam(url, name, dflt, max) {
  const v = url.searchParams.get(name);
  if (v === null || !/^[0-9]+$/.test(v)) return dflt;
  return Math.min(Number(v), max);
}

function pattern(from, len) {
  const b = Buffer.allocUnsafe(len);
  for (let i = 0; i < len; i++) b[i] = 0x61 + ((from + i) % 26);
  return b;
}

/** write N pattern bytes in 64 KiB pieces, waiting for drain */
function streamBytes(res, n) {
  let sent = 0;
  const next = () => {
    while (sent < n) {
      const len = Math.min(65536, n - sent);
      const ok = res.write(pattern(sent, len));
      sent += len;
      if (!ok) {
        res.once('drain', next);
        return;
      }
    }
    res.end();
  };
  next();
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://backend');
  const first = !seen.has(req.socket);
  seen.add(req.socket);
  if (url.pathname === '/__count') {
    if (first) connections--;
    const body = JSON.stringify({ requests, connections });
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
    return;
  }
  requests++;
  const chunks = [];
  let size = 0;
  req.on('data', (d) => {
    if (size < 64 * 1024 * 1024) chunks.push(d);
    size += d.length;
  });
  req.on('end', () => route(url, req, res, Buffer.concat(chunks), size));
});

function route(url, req, res, body, size) {
  // /echo and anything under /echo/ echo the request (URI rewriting tests)
  switch (url.pathname.startsWith('/echo/') ? '/echo' : url.pathname) {
    case '/echo': {
      const out = JSON.stringify({
        method: req.method,
        url: req.url,
        httpVersion: req.httpVersion,
        rawHeaders: req.rawHeaders,
        body: body.toString('latin1'),
        bodyLength: size,
        remote: req.socket.remoteAddress,
      });
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(out) });
      res.end(out);
      return;
    }
    case '/cookie': {
      // Set-Cookie lines as given (?v=...&v=...), for proxy_cookie_* tests
      res.setHeader('Set-Cookie', url.searchParams.getAll('v'));
      res.setHeader('Content-Type', 'text/plain');
      res.setHeader('Content-Length', '7');
      res.end('cookie\n');
      return;
    }
    case '/bytes': {
      const n = intParam(url, 'n', 1024, MAX_BYTES);
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': n });
      streamBytes(res, n);
      return;
    }
    case '/chunked': {
      const n = intParam(url, 'n', 3, MAX_PIECES);
      res.writeHead(200, { 'Content-Type': 'text/plain' }); // no length: chunked
      for (let i = 0; i < n; i++) res.write(`piece ${i}\n`);
      res.end();
      return;
    }
    case '/slow': {
      const ms = intParam(url, 'ms', 100, 60000);
      const n = intParam(url, 'n', 5, MAX_PIECES);
      const delay = intParam(url, 'delay', 0, 60000);
      let i = 0;
      let timer;
      res.on('close', () => clearTimeout(timer));
      const drip = () => {
        if (res.destroyed) return;
        if (i >= n) {
          res.end();
          return;
        }
        res.write(`drip ${i++}\n`);
        timer = setTimeout(drip, ms);
      };
      timer = setTimeout(() => {
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        res.flushHeaders();
        drip();
      }, delay);
      return;
    }
    case '/cut': {
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': 1000 });
      res.write(pattern(0, 500), () => setTimeout(() => req.socket.destroy(), 20));
      return;
    }
    case '/status': {
      const code = intParam(url, 'code', 200, 999);
      if (code < 100) {
        res.writeHead(400, { 'Content-Type': 'text/plain' });
        res.end('bad code\n');
        return;
      }
      if (code === 204 || code === 304) {
        res.writeHead(code);
        res.end();
        return;
      }
      const text = `status ${code}\n`;
      res.writeHead(code, { 'Content-Type': 'text/plain', 'Content-Length': text.length });
      res.end(text);
      return;
    }
    case '/redirect': {
      const to = url.searchParams.get('to') ?? '/echo';
      res.writeHead(302, { Location: to, 'Content-Type': 'text/plain', 'Content-Length': 0 });
      res.end();
      return;
    }
    default:
      res.writeHead(404, { 'Content-Type': 'text/plain', 'Content-Length': 10 });
      res.end('not found\n');
  }
}

server.keepAliveTimeout = keepAliveTimeout;
server.headersTimeout = keepAliveTimeout + 1000;
server.requestTimeout = 0;
server.on('connection', (sock) => {
  connections++;
  sock.on('error', () => {});
});

function shutdown() {
  server.close();
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 50).unref();
}

process.on('SIGTERM', shutdown);
process.stdin.on('end', shutdown);
process.stdin.on('close', shutdown);
process.stdin.resume();

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${server.address().port}\n`);
});
