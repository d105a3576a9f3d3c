import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Does the pattern have glob(3) wildcards (nginx tests with strpbrk "*?[")? */
export function hasWildcard(pattern: string): boolean {
  return /[*?[]/.test(pattern);
}

/** One path segment of fnmatch(3) without flags, compiled to a RegExp. */
function segmentRegExp(seg: string): RegExp {
  let re = '^';
  for (let i = 0; i < seg.length; i++) {
    const c = seg[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const close = seg.indexOf(']', i + 2);
      if (close === -1) {
        re += '\\[';
        continue;
      }
      let body = seg.slice(i + 1, close);
      if (body[0] === '!') body = '^' + body.slice(1);
      re += '[' + body.replace(/\\/g, '\\\\') + ']';
      i = close;
    } else if (c === '\\' && i + 1 < seg.length) {
      re += seg[++i]!.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    } else re += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(re + '$');
}

/**
 * glob(pattern, 0): absolute matches sorted in byte order, as glibc's glob
 * in the C locale; a leading dot is only matched by a literal dot.
 */
export function globSync(pattern: string): string[] {
  const absolute = pattern.startsWith('/');
  const segs = pattern.split('/').filter((s) => s.length > 0);
  let bases = [absolute ? '/' : '.'];
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i]!;
    const last = i === segs.length - 1;
    const next: string[] = [];
    if (!hasWildcard(seg)) {
      for (const b of bases) {
        const p = join(b, seg);
        try {
          const st = statSync(p);
          if (last || st.isDirectory()) next.push(p);
        } catch {
          /* no match */
        }
      }
    } else {
      const re = segmentRegExp(seg);
      for (const b of bases) {
        let names: string[];
        try {
          names = readdirSync(b);
        } catch {
          continue;
        }
        for (const n of names) {
          if (n.startsWith('.') && !seg.startsWith('.')) continue;
          if (!re.test(n)) continue;
          const p = join(b, n);
          if (!last) {
            try {
              if (!statSync(p).isDirectory()) continue;
            } catch {
              continue;
            }
          }
          next.push(p);
        }
      }
    }
    bases = next;
    if (bases.length === 0) break;
  }
  return bases.sort((a, b) => (Buffer.compare(Buffer.from(a), Buffer.from(b))));
}
