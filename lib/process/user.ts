import type { CoreConf } from '../modules/core/module.js';
import { errnoSuffix, type ErrorLog } from '../core/error_log.js';

/*
 * ngx_worker_process_init's user switch: a worker of a root master takes
 * the `user` directive's group, that user's supplementary groups, then its
 * uid, before it serves (a single process, `master_process off`, stays as
 * it is, as nginx's). The worker opened its log files before, as root,
 * and keeps their descriptors; the master gives reopened files to the user
 * (error_log.ts setReopenOwner) so the workers' USR1 can open them again.
 */

export function switchWorkerUser(core: CoreConf, log: ErrorLog): void {
  if (process.geteuid?.() !== 0 || core.userId < 0 || core.user === undefined) return;
  const { userId: uid, groupId: gid, user } = core;
  try {
    process.setgid!(gid);
  } catch (e) {
    log.write('emerg', 0, `setgid(${gid}) failed ${errnoSuffix(e)}`);
    process.exit(2);
  }
  try {
    // process.initgroups exists on POSIX Node; @types/node 20 does not declare it
    (process as unknown as { initgroups(user: string, extraGroup: number): void }).initgroups(user, gid);
  } catch (e) {
    log.write('emerg', 0, `initgroups(${user}, ${gid}) failed ${errnoSuffix(e)}`);
  }
  try {
    process.setuid!(uid);
  } catch (e) {
    log.write('emerg', 0, `setuid(${uid}) failed ${errnoSuffix(e)}`);
    process.exit(2);
  }
}
