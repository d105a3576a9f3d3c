/*
 * The config fuzzer's loader process: loads each config it is sent with
 * redis2d's own loader (lib/, in process: thousands a minute) and answers
 * `ok`, the ConfError's text, or a crash (any other exception, with its
 * stack). The parent kills and restarts it when a load hangs.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfError } from '../../lib/conf/errors.js';
import { loadConfig } from '../../lib/process/config.js';

const dir = process.argv[2]!;

process.on('message', (m: { i: number; text: string }) => {
  const file = join(dir, 'nginx.conf');
  writeFileSync(file, m.text, 'latin1');
  let reply: { i: number; kind: 'ok' | 'error' | 'crash'; text: string };
  try {
    loadConfig({ confFile: file, prefix: dir });
    reply = { i: m.i, kind: 'ok', text: '' };
  } catch (e) {
    if (e instanceof ConfError) reply = { i: m.i, kind: 'error', text: `[${e.level}] ${e.format()}` };
    else reply = { i: m.i, kind: 'crash', text: (e as Error)?.stack ?? String(e) };
  }
  process.send!(reply);
});
process.send!({ i: -1, kind: 'ok', text: 'ready' });
