import t from 'tap';
import { buildCommand, escapeKey } from '../lib/modules/redis/command.js';
import { parseHeader, VALUE_TRAILER, type Header } from '../lib/modules/redis/reply.js';
import { Piece, ValueFilter } from '../lib/upstream/value_filter.js';
import { GET_TRAILER } from '../lib/modules/memc/reply.js';

/*
 * The pieces of lib/modules/redis/ that need no server: the key escaping
 * (ngx_escape_uri's NGX_ESCAPE_REFRESH table), the command bytes, the
 * header parser (process_header) and the value filter (the CR LF after the
 * value), fed in every split a socket could produce.
 */

t.test('escapeKey: 00-20, ", \', 7F-FF as %XX; the rest as is', async (t) => {
  t.equal(escapeKey('plain/path?a=1&b=%41~'), 'plain/path?a=1&b=%41~');
  t.equal(escapeKey('a b'), 'a%20b');
  t.equal(escapeKey('"\'\t\r\n\x00\x7f\x80\xff'), '%22%27%09%0D%0A%00%7F%80%FF');
  t.equal(escapeKey('<>#{}|\\^`'), '<>#{}|\\^`', 'characters URI escaping would touch are kept');
});

t.test('buildCommand', async (t) => {
  const c = buildCommand('', '', 'k y');
  t.equal(c.bytes.toString('latin1'), '*2\r\n$6\r\nselect\r\n$1\r\n0\r\n*2\r\n$3\r\nget\r\n$5\r\nk%20y\r\n');
  t.equal(c.key, 'k%20y');
  t.equal(c.state, '*2\r\n$6\r\nselect\r\n$1\r\n0\r\n');
  t.notOk(c.auth);
  const a = buildCommand('pw', '15', 'k');
  t.equal(a.bytes.toString('latin1'), '*2\r\n$4\r\nauth\r\n$2\r\npw\r\n*2\r\n$6\r\nselect\r\n$2\r\n15\r\n*2\r\n$3\r\nget\r\n$1\r\nk\r\n');
  t.equal(a.state, '*2\r\n$4\r\nauth\r\n$2\r\npw\r\n*2\r\n$6\r\nselect\r\n$2\r\n15\r\n');
  t.ok(a.auth);
});

function header(reply: string, opts: { auth?: boolean; size?: number } = {}): { h: Header; log: string[] } {
  const log: string[] = [];
  const buf = Buffer.from(reply, 'latin1');
  const size = opts.size ?? 4096;
  const avail = Math.min(buf.length, size);
  const h = parseHeader(buf, avail, avail >= size, opts.auth ?? false, 'KEY', (level, msg) => log.push(`${level}: ${msg}`));
  return { h, log };
}

t.test('parseHeader', async (t) => {
  t.same(header('+OK\r\n$5\r\nhello\r\n').h, { kind: 'found', length: 5, body: 9 });
  t.same(header('+OK\r\n$0\r\n\r\n').h, { kind: 'found', length: 0, body: 9 });
  t.same(header('+OK\r\n+OK\r\n$2\r\nhi\r\n', { auth: true }).h, { kind: 'found', length: 2, body: 14 });
  t.same(header('').h, { kind: 'again' });
  t.same(header('+OK\r').h, { kind: 'again' });
  t.same(header('+OK\r\n$12').h, { kind: 'again' }, 'the length line is not complete yet');
  t.same(header('+OK\r\n$5\r\n', { auth: true }).h, { kind: 'again' }, 'with AUTH a third line is due');
  t.same(header(`+OK\r\n$${'1'.repeat(30)}`, { size: 16 }).h, { kind: 'too-big' });

  let r = header('+OK\r\n$-1\r\n');
  t.same(r.h, { kind: 'not-found', body: 10 });
  t.same(r.log, ['info: key: "KEY" was not found by redis']);

  r = header('-ERR DB index is out of range\r\n$-1\r\n');
  t.same(r.h, { kind: 'invalid' });
  t.same(r.log, [
    'error: redis sent error in response "-ERR DB index is out of range" for key "KEY"',
    'error: redis sent invalid response: "-ERR DB index is out of range"',
  ]);

  r = header('-NOAUTH Authentication required.\r\n');
  t.same(r.log, ['error: redis sent invalid response: "-NOAUTH Authentication required."'], 'only -ERR gets the first line');

  r = header('+OK\r\n-WRONGTYPE Operation\r\n');
  t.same(r.log, ['error: redis sent invalid response: "+OK\r\n-WRONGTYPE Operation"']);

  r = header('+OK\r\n$5x\r\n');
  t.same(r.h, { kind: 'invalid' });
  t.same(r.log, ['error: redis sent invalid length in response "+OK\r\n$5x" for key "KEY"']);
  t.same(header('+OK\r\n$\r\n').h, { kind: 'invalid' }, 'no digits');
  t.same(header('+OK\r\n$-2\r\n').h, { kind: 'invalid' }, 'a negative length other than -1');
  t.same(header('+OK\r\n$12\n').h, { kind: 'found', length: 1, body: 9 }, 'no CR: the byte before the LF is dropped, as the module reads it');

  r = header(':1\r\n');
  t.same(r.h, { kind: 'invalid' });
  t.same(r.log, ['error: redis sent invalid response: ":1"']);
  t.same(header('+QUEUED\r\n$1\r\n').h, { kind: 'invalid' }, 'the first line must be +OK');
});

/** feed `wire` in pieces cut at `cuts`, collect what is emitted and the last result */
function filter(len: number, wire: string, cuts: number[], trailer = VALUE_TRAILER): { out: string; results: Piece[] } {
  const f = new ValueFilter(len, trailer);
  let out = '';
  const results: Piece[] = [];
  let from = 0;
  for (const at of [...cuts, wire.length]) {
    // each piece after two bytes that are not the filter's (it reads from an offset)
    results.push(f.feed(Buffer.from(`##${wire.slice(from, at)}`, 'latin1'), 2, { valueBytes: (b, s, e) => void (out += b.toString('latin1', s, e)) }));
    from = at;
  }
  return { out, results };
}

t.test('ValueFilter: every split of value and trailer', async (t) => {
  const wire = 'hello\r\n';
  for (let a = 0; a <= wire.length; a++) {
    for (let b = a; b <= wire.length; b++) {
      const { out, results } = filter(5, wire, [a, b]);
      t.equal(out, 'hello', `cut at ${a},${b}: the value`);
      t.equal(results.at(-1), Piece.Done, `cut at ${a},${b}: done`);
      t.notOk(results.slice(0, -1).includes(Piece.BadTrailer));
    }
  }
  t.same(filter(0, '\r\n', []), { out: '', results: [Piece.Done] }, 'an empty value');
  t.same(filter(3, 'abcXY', []), { out: 'abc', results: [Piece.BadTrailer] }, 'a bad trailer: the value, then stop');
  t.same(filter(3, 'abc\r\nextra', []), { out: 'abc', results: [Piece.BadTrailer] }, 'bytes after the trailer are a bad trailer too');
  t.same(filter(3, 'abc\rX', [4]), { out: 'abc', results: [Piece.More, Piece.BadTrailer] }, 'a bad LF in a later read');
});

t.test('ValueFilter with memcached\'s CR LF END CR LF trailer: every split', async (t) => {
  const wire = 'hello\r\nEND\r\n';
  for (let a = 0; a <= wire.length; a++) {
    for (let b = a; b <= wire.length; b++) {
      const { out, results } = filter(5, wire, [a, b], GET_TRAILER);
      t.equal(out, 'hello', `cut at ${a},${b}: the value`);
      t.equal(results.at(-1), Piece.Done, `cut at ${a},${b}: done`);
      t.notOk(results.slice(0, -1).includes(Piece.BadTrailer));
    }
  }
  t.same(filter(3, 'abc\r\nEND\r\n', [4], GET_TRAILER), { out: 'abc', results: [Piece.More, Piece.Done] }, 'the trailer across reads');
  t.same(filter(3, 'abc\r\nEMD\r\n', [], GET_TRAILER), { out: 'abc', results: [Piece.BadTrailer] }, 'a wrong trailer: the value, then stop');
  t.same(filter(3, 'abc\r\nEND\r\nX', [], GET_TRAILER), { out: 'abc', results: [Piece.BadTrailer] }, 'a byte after the trailer');
  t.same(filter(3, 'abc\r\nEN', [], GET_TRAILER), { out: 'abc', results: [Piece.More] }, 'half a trailer: more expected');
});
