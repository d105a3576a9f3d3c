import { createServer } from 'node:http';

/*
 * The application behind the proxy benchmark: Node's bare `http` module
 * answering every request with 1 KiB, keep-alive on. Plain JavaScript so
 * that no loader sits in the measured process.
 * Usage: node bench/backend-1k.mjs PORT
 */

const port = Number(process.argv[2]);
const body = Buffer.alloc(1024, 'x');
const server = createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': body.length });
  res.end(body);
});
server.keepAliveTimeout = 65000;
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
