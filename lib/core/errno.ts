/*
 * nginx prints system errors as `(N: strerror)`; Node gives us the code
 * name (ECONNREFUSED) and a negative errno. This is the one Linux table
 * every layer formats them with: the config loader, the logs, the listen
 * sockets and the upstream connections.
 */
const LINUX: Record<string, [number, string]> = {
  EPERM: [1, 'Operation not permitted'],
  ENOENT: [2, 'No such file or directory'],
  ESRCH: [3, 'No such process'],
  EAGAIN: [11, 'Resource temporarily unavailable'],
  EACCES: [13, 'Permission denied'],
  EEXIST: [17, 'File exists'],
  ENOTDIR: [20, 'Not a directory'],
  EISDIR: [21, 'Is a directory'],
  EINVAL: [22, 'Invalid argument'],
  EMFILE: [24, 'Too many open files'],
  ENOSPC: [28, 'No space left on device'],
  EROFS: [30, 'Read-only file system'],
  EPIPE: [32, 'Broken pipe'],
  ENAMETOOLONG: [36, 'File name too long'],
  ELOOP: [40, 'Too many levels of symbolic links'],
  ENOTSOCK: [88, 'Socket operation on non-socket'],
  EADDRINUSE: [98, 'Address already in use'],
  EADDRNOTAVAIL: [99, 'Cannot assign requested address'],
  ENETDOWN: [100, 'Network is down'],
  ENETUNREACH: [101, 'Network is unreachable'],
  ECONNRESET: [104, 'Connection reset by peer'],
  ETIMEDOUT: [110, 'Connection timed out'],
  ECONNREFUSED: [111, 'Connection refused'],
  EHOSTDOWN: [112, 'Host is down'],
  EHOSTUNREACH: [113, 'No route to host'],
};

/** `111: Connection refused` for an error carrying a code like ECONNREFUSED (no parentheses). */
export function errnoText(err: unknown): string {
  const e = err as NodeJS.ErrnoException | undefined;
  const known = e?.code !== undefined ? LINUX[e.code] : undefined;
  if (known) return `${known[0]}: ${known[1]}`;
  const n = typeof e?.errno === 'number' ? Math.abs(e.errno) : 0;
  return `${n}: ${e?.code ?? (err as Error | undefined)?.message ?? String(err)}`;
}

/** `(2: No such file or directory)`: the form nginx appends after `failed ` */
export function errnoSuffix(err: unknown): string {
  return `(${errnoText(err)})`;
}
