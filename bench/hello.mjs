import { createServer } from 'node:http';

/*
 * The ceiling: Node's bare `http` module answering every request with the
 * same body workload A gets from redis2d (`$10\r\n0123456789\r\n`), no Redis
 * behind it. Plain JavaScript so that no loader (tsx) sits in the measured process.
 * Usage: node bench/hello.mjs PORT
 */

const port = Number(process.argv[2]);
const body = Buffer.from('$10\r\n0123456789\r\n', 'latin1');
const server = createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': body.length });
  res.end(body);
});
server.keepAliveTimeout = 65000;
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
