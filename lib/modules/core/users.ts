import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/*
 * getpwnam(3) and getgrnam(3) for the `user` directive, which Node does not
 * expose: `getent passwd NAME` / `getent group NAME` (through NSS, as libc
 * looks them up), or /etc/passwd and /etc/group when getent is missing. By
 * name only, as getpwnam: getent would also take a number for an id.
 */

/** the id field of the NAME entry of `db` (passwd: uid; group: gid), or undefined */
function lookup(db: 'passwd' | 'group', name: string): number | undefined {
  if (name.length === 0 || name.includes(':') || name.includes('\n')) return undefined;
  let text: string | undefined;
  const r = spawnSync('getent', [db, name], { encoding: 'latin1', timeout: 10000 });
  if (r.error === undefined) {
    if (r.status !== 0) return undefined;
    text = r.stdout;
  } else {
    try {
      text = readFileSync(`/etc/${db}`, 'latin1');
    } catch {
      return undefined;
    }
  }
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f.length >= 3) {
      const id = Number(f[2]);
      return Number.isInteger(id) && id >= 0 ? id : undefined;
    }
  }
  return undefined;
}

export const getpwnamUid = (name: string): number | undefined => lookup('passwd', name);
export const getgrnamGid = (name: string): number | undefined => lookup('group', name);

/** the group nginx's build defaults to with the `nobody` user (auto/unix: `nobody` if /etc/group has it, else `nogroup`) */
export const DEFAULT_USER = 'nobody';
export const DEFAULT_GROUP = 'nogroup';
