import { spawnSync } from 'node:child_process';
import { runCmd } from './proc.js';

/*
 * `-t` judged by both programs: redis2d -t and Debian's nginx -t on the
 * same file with the same prefix, their exit codes and their [emerg] /
 * [alert] / [crit] / [warn] / [notice] lines with the program names set
 * aside. nginx -t binds the listen sockets: configs listen on loopback
 * high ports only.
 */

export const NGINX = '/usr/sbin/nginx';

export interface Verdict {
  status: number | null;
  stderr: string;
}

/** the judgement's lines without `redis2d: ` / `nginx: ` (redis2d's own notes on no-op directives left out) */
export function verdictLines(stderr: string, program: string): string[] {
  return stderr
    .split('\n')
    .filter((l) => /^\S+: \[(emerg|alert|crit|warn|notice)\] /.test(l))
    .filter((l) => !l.endsWith('has no effect in redis2d'))
    .map((l) => l.slice(program.length + 2));
}

/** redis2d -t -p PREFIX/ -c FILE */
export async function judgeRedis2d(file: string, prefix: string): Promise<Verdict> {
  const r = await runCmd(['-t', '-p', `${prefix}/`, '-c', file], 'redis2d', 30000);
  return { status: r.code, stderr: r.stderr };
}

/** nginx -t -p PREFIX/ -c FILE, its error log kept off the prefix (`-e /dev/null`); `globals`: a -g line */
export function judgeNginx(file: string, prefix: string, globals?: string): Verdict {
  const g = globals === undefined ? [] : ['-g', globals];
  const n = spawnSync(NGINX, ['-t', '-e', '/dev/null', '-p', `${prefix}/`, ...g, '-c', file], { encoding: 'latin1' });
  return { status: n.status, stderr: n.stderr };
}

/** both judgements of one file */
export async function judgeBoth(file: string, prefix: string): Promise<{ ours: Verdict; theirs: Verdict }> {
  return { ours: await judgeRedis2d(file, prefix), theirs: judgeNginx(file, prefix) };
}
