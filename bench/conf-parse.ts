/*
 * Config-load benchmark: a generated config with 10,000 locations (redis2
 * queries and passes, some regex locations) spread over 1,000 include
 * files, loaded with loadConfig(). Prints the time of each run and the best.
 * Target: under 1 s on the development machine.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { loadConfig } from '../lib/process/config.js';

const LOCATIONS = 10_000;
const INCLUDES = 1_000;
const RUNS = 3;

function generate(dir: string): string {
  mkdirSync(join(dir, 'locs'));
  const perFile = LOCATIONS / INCLUDES;
  for (let f = 0; f < INCLUDES; f++) {
    let text = '';
    for (let j = 0; j < perFile; j++) {
      const n = f * perFile + j;
      if (n % 10 === 0) {
        text += `location ~ ^/re${n}/(?<key>[a-z0-9]+)$ {\n    redis2_query get $key;\n    redis2_pass redis_pool;\n}\n`;
      } else if (n % 10 === 1) {
        text += `location = /pipe${n} {\n    redis2_query set k${n} "$arg_v";\n    redis2_query get k${n};\n    redis2_pass 127.0.0.1:${6379 + (n % 4)};\n}\n`;
      } else {
        text += `location /kv${n}/ {\n    redis2_query get $arg_key;\n    redis2_read_timeout 200ms;\n    redis2_pass redis_pool;\n}\n`;
      }
    }
    writeFileSync(join(dir, 'locs', `part${String(f).padStart(4, '0')}.conf`), text);
  }
  const main = `events {}
http {
    upstream redis_pool {
        server 127.0.0.1:6379 weight=2;
        server 127.0.0.1:6380;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:8080;
        include locs/*.conf;
    }
}
`;
  const file = join(dir, 'nginx.conf');
  writeFileSync(file, main);
  return file;
}

const dir = mkdtempSync(join(tmpdir(), 'redis2d-conf-bench-'));
try {
  const confFile = generate(dir);
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    loadConfig({ confFile, prefix: dir });
    times.push(performance.now() - t0);
  }
  for (const [i, t] of times.entries()) console.log(`run ${i + 1}: ${t.toFixed(1)} ms`);
  console.log(`loadConfig: ${LOCATIONS} locations, ${INCLUDES} include files: best ${Math.min(...times).toFixed(1)} ms`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
