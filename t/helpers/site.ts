import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { hasNginx, type Running } from './server.js';

/*
 * Shared by the site-*.test.ts differential tests (limit_req, limit_conn,
 * realip, auth_basic, zones): nginx's echo module for a content handler
 * that runs after the pre-access and access phases, and the error log's
 * lines without their time and pid.
 */

export const MODS = '/usr/lib/nginx/modules';
export const LOAD_ECHO = `load_module ${MODS}/ngx_http_echo_module.so;`;
export const skipEcho = !hasNginx || !existsSync(`${MODS}/ngx_http_echo_module.so`) ? 'Debian nginx with the echo module not installed' : false;

/** the error log's lines at these levels, `LEVEL message` (no time, no pid), minus keep-alive chatter */
export function logLines(s: Running, levels = ['emerg', 'alert', 'crit', 'error', 'warn', 'notice', 'info']): string[] {
  const out: string[] = [];
  for (const line of s.errorLog().split('\n')) {
    const m = /^\S+ \S+ \[(\w+)\] \d+#\d+: (.*)$/.exec(line);
    if (!m || !levels.includes(m[1]!)) continue;
    const msg = m[2]!;
    if (/keepalive connection|closed connection while waiting|start worker|signal|exiting|exit$|using the|worker process|gracefully|reopening|built by|^nginx\/|OS:|getrlimit/.test(msg)) continue;
    out.push(`${m[1]} ${msg}`);
  }
  return out;
}

/** one request on its own connection: status code and whole response (latin1), waiting for the close */
export function request(port: number, text: string, timeoutMs = 5000): Promise<{ status: number; raw: string; ms: number }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const c = connect(port, '127.0.0.1');
    let raw = '';
    const timer = setTimeout(() => c.destroy(), timeoutMs);
    c.on('data', (d) => (raw += d.toString('latin1')));
    c.on('error', () => {});
    c.on('close', () => {
      clearTimeout(timer);
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(raw);
      resolve({ status: m ? Number(m[1]) : 0, raw, ms: Date.now() - started });
    });
    c.on('connect', () => c.write(text));
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
