import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/*
 * getpwnam(3) and getgrnam(3) for the `user` directive, which Node does not
 * expose: /etc/passwd and /etc/group first (the `files` source every
 * nsswitch.conf starts with, read without a process), then `getent passwd
 * NAME` / `getent group NAME` for names only other NSS sources know (LDAP,
 * systemd). By name only, as getpwnam: getent would also take a number.
 */

/** the id (third field) of the NAME line of passwd/group text, or undefined */
function idIn(text: string, name: string): number | undefined {
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f.length >= 3) {
      const id = Number(f[2]);
      return Number.isInteger(id) && id >= 0 ? id : undefined;
    }
  }
  return undefined;
}

function lookup(db: 'passwd' | 'group', name: string): number | undefined {
  if (name.length === 0 || name.includes(':') || name.includes('\n')) return undefined;
  try {
    const id = idIn(readFileSync(`/etc/${db}`, 'latin1'), name);
    if (id !== undefined) return id;
  } catch {
    /* no file: NSS only */
  }
  const r = spawnSync('getent', [db, name], { encoding: 'latin1', timeout: 10000 });
  if (r.error !== undefined || r.status !== 0) return undefined;
  return idIn(r.stdout, name);
}

export const getpwnamUid = (name: string): number | undefined => lookup('passwd', name);
export const getgrnamGid = (name: string): number | undefined => lookup('group', name);

/** the workers' default user and group of Debian's nginx (its build found no `nobody` group: auto/unix took `nogroup`) */
export const DEFAULT_USER = 'nobody';
export const DEFAULT_GROUP = 'nogroup';
