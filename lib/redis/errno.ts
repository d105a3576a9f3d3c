/*
 * nginx prints system errors as `(errno: strerror)`; Node gives us only the
 * code name. This is the Linux table for the errors a Redis upstream can meet.
 */
const LINUX: Record<string, [number, string]> = {
  ENOENT: [2, 'No such file or directory'],
  EACCES: [13, 'Permission denied'],
  EPIPE: [32, 'Broken pipe'],
  EAGAIN: [11, 'Resource temporarily unavailable'],
  EADDRINUSE: [98, 'Address already in use'],
  EADDRNOTAVAIL: [99, 'Cannot assign requested address'],
  ENETDOWN: [100, 'Network is down'],
  ENETUNREACH: [101, 'Network is unreachable'],
  ECONNRESET: [104, 'Connection reset by peer'],
  ETIMEDOUT: [110, 'Connection timed out'],
  ECONNREFUSED: [111, 'Connection refused'],
  EHOSTDOWN: [112, 'Host is down'],
  EHOSTUNREACH: [113, 'No route to host'],
  ENOTSOCK: [88, 'Socket operation on non-socket'],
  EINVAL: [22, 'Invalid argument'],
};

/** `111: Connection refused` for an error carrying a code like ECONNREFUSED. */
export function errnoText(err: NodeJS.ErrnoException): string {
  const known = err.code !== undefined ? LINUX[err.code] : undefined;
  if (known) return `${known[0]}: ${known[1]}`;
  const n = typeof err.errno === 'number' ? Math.abs(err.errno) : 0;
  return `${n}: ${err.code ?? err.message}`;
}
