import t from 'tap';
import {
  CgiHeaderParser,
  FCGI_BEGIN_REQUEST,
  FCGI_END_REQUEST,
  FCGI_HEADER_LEN,
  FCGI_PARAMS,
  FCGI_PARAMS_RECORD_MAX,
  FCGI_STDERR,
  FCGI_STDIN,
  FCGI_STDOUT,
  RecordParser,
  decodeParams,
  encodeBeginRequest,
  encodeEndRequest,
  encodePair,
  encodeParams,
  encodeParamsEnd,
  encodeRecord,
  encodeStdin,
  encodeStdinEnd,
  encodeStream,
  paddingFor,
  paramsLength,
  splitRecords,
  stderrLogText,
  type CgiHead,
  type HeadResult,
  type ParamPair,
  type RecordEvent,
} from '../lib/modules/fastcgi/record.js';

const L = (s: string): Buffer => Buffer.from(s, 'latin1');

t.test('BEGIN_REQUEST and terminators, byte for byte', async (t) => {
  t.same([...encodeBeginRequest(1, true)], [1, FCGI_BEGIN_REQUEST, 0, 1, 0, 8, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]);
  t.same([...encodeBeginRequest(0x1234, false)], [1, 1, 0x12, 0x34, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
  t.same([...encodeParamsEnd(1)], [1, FCGI_PARAMS, 0, 1, 0, 0, 0, 0]);
  t.same([...encodeStdinEnd(1)], [1, FCGI_STDIN, 0, 1, 0, 0, 0, 0]);
  t.same([...encodeEndRequest(1, 0x01020304, 2)], [1, FCGI_END_REQUEST, 0, 1, 0, 8, 0, 0, 1, 2, 3, 4, 2, 0, 0, 0]);
  t.throws(() => encodeBeginRequest(70000, true), RangeError);
  t.throws(() => encodeRecord(FCGI_STDOUT, 1, Buffer.alloc(65536)), RangeError);
});

t.test('name-value pairs: 1- and 4-byte lengths', async (t) => {
  t.same([...encodePair('AB', 'xyz')], [2, 3, 0x41, 0x42, 0x78, 0x79, 0x7a]);
  const n127 = 'n'.repeat(127);
  t.same([...encodePair(n127, '').subarray(0, 2)], [127, 0], '127 still takes one byte');
  const n128 = 'n'.repeat(128);
  const v300 = Buffer.alloc(300, 0x76);
  const p = encodePair(n128, v300);
  t.same([...p.subarray(0, 8)], [0x80, 0, 0, 128, 0x80, 0, 0x01, 0x2c], 'lengths > 127 take 4 bytes, high bit set');
  t.equal(p.length, 8 + 128 + 300);
  t.equal(paramsLength([[n128, v300]]), p.length);
  const back = decodeParams(p);
  t.equal(back.length, 1);
  t.equal(back[0]![0].toString('latin1'), n128);
  t.ok(back[0]![1].equals(v300));
  /* bytes > 0x7f in strings are single bytes (latin1) */
  t.same([...encodePair('\u00e9', '\u00ff')], [1, 1, 0xe9, 0xff]);
});

function paramsRecords(buf: Buffer): { contents: Buffer[]; paddings: number[] } {
  const { records, rest } = splitRecords(buf);
  if (rest !== buf.length) throw new Error('not whole records');
  const contents: Buffer[] = [];
  const paddings: number[] = [];
  for (const r of records) {
    if (r.type !== FCGI_PARAMS || r.version !== 1 || r.requestId !== 7) throw new Error('unexpected record');
    contents.push(r.content);
    paddings.push(r.paddingLength);
  }
  return { contents, paddings };
}

t.test('PARAMS: padding to 8 as nginx, round trip', async (t) => {
  const pairs: ParamPair[] = [
    ['QUERY_STRING', 'a=1&b=2'],
    ['REQUEST_METHOD', 'GET'],
    ['SCRIPT_FILENAME', '/srv/www/index.php'],
    ['EMPTY', ''],
    [L('HTTP_X_BIN'), Buffer.from([0, 1, 2, 0xff])],
  ];
  const buf = encodeParams(7, pairs);
  const { contents, paddings } = paramsRecords(buf);
  t.equal(contents.length, 1, 'one record');
  t.equal(contents[0]!.length, paramsLength(pairs));
  t.equal(paddings[0], paddingFor(contents[0]!.length));
  t.equal((contents[0]!.length + paddings[0]!) % 8, 0, 'content + padding is a multiple of 8');
  t.equal(buf.length % 8, 0);
  const pad = buf.subarray(FCGI_HEADER_LEN + contents[0]!.length);
  t.ok(pad.every((b) => b === 0), 'padding is zeros');
  t.same(
    decodeParams(contents[0]!).map(([n, v]) => [n.toString('latin1'), v.toString('latin1')]),
    pairs.map(([n, v]) => [typeof n === 'string' ? n : n.toString('latin1'), typeof v === 'string' ? v : v.toString('latin1')]),
  );
  t.equal(encodeParams(7, []).length, 0, 'no pairs, no records');
  for (let len = 0; len < 16; len++) t.equal((len + paddingFor(len)) % 8, 0);
});

t.test('PARAMS: 70,000 bytes across records', async (t) => {
  /* many pairs: records break between pairs, each record decodes on its own (php-fpm reads them so) */
  const pairs: ParamPair[] = [];
  for (let i = 0; i < 700; i++) pairs.push([`HTTP_X_${i}`, 'v'.repeat(90 + (i % 7))]);
  const total = paramsLength(pairs);
  t.ok(total > 70000, `${total} bytes of pairs`);
  const many = paramsRecords(encodeParams(7, pairs));
  t.ok(many.contents.length >= 2, `${many.contents.length} records`);
  let decoded: Array<[Buffer, Buffer]> = [];
  for (const c of many.contents) {
    t.ok(c.length <= FCGI_PARAMS_RECORD_MAX);
    decoded = decoded.concat(decodeParams(c)); // would throw on a pair cut in two
  }
  t.equal(decoded.length, 700);
  t.equal(decoded[699]![0].toString('latin1'), 'HTTP_X_699');
  t.same(
    many.contents.map((c, i) => (c.length + many.paddings[i]!) % 8),
    many.contents.map(() => 0),
  );
  /* one value bigger than a record: split inside the pair, the stream decodes */
  const big = Buffer.alloc(70000);
  for (let i = 0; i < big.length; i++) big[i] = i & 0xff;
  const one = paramsRecords(encodeParams(7, [['A', 'b'], ['BIG', big], ['Z', 'z']]));
  t.same(
    one.contents.map((c) => c.length),
    [FCGI_PARAMS_RECORD_MAX, 4 + (1 + 4 + 3 + 70000) + 4 - FCGI_PARAMS_RECORD_MAX],
  );
  const back = decodeParams(Buffer.concat(one.contents));
  t.same(
    back.map(([n]) => n.toString('latin1')),
    ['A', 'BIG', 'Z'],
  );
  t.ok(back[1]![1].equals(big));
  /* a smaller record size, to see pair packing in action */
  const small = paramsRecords(encodeParams(7, [['AAAA', 'bbbb'], ['CCCC', 'dddd'], ['E', 'f']], 16));
  t.same(
    small.contents.map((c) => c.length),
    [10, 14],
  );
});

t.test('STDIN: 32 KiB records, zero-copy, no empty record for an empty chunk', async (t) => {
  t.same(encodeStdin(1, Buffer.alloc(0)), []);
  const body = Buffer.alloc(100001, 0x61);
  const parts = encodeStdin(1, body);
  const wire = Buffer.concat(parts);
  const { records, rest } = splitRecords(wire);
  t.equal(rest, wire.length);
  t.same(
    records.map((r) => [r.type, r.content.length, r.paddingLength]),
    [
      [FCGI_STDIN, 32768, 0],
      [FCGI_STDIN, 32768, 0],
      [FCGI_STDIN, 32768, 0],
      [FCGI_STDIN, 1697, 7],
    ],
  );
  t.ok(Buffer.concat(records.map((r) => r.content)).equals(body));
  const dataParts = parts.filter((p) => p.length > 8);
  t.ok(
    dataParts.every((p) => p.buffer === body.buffer),
    'data parts are subarrays of the body',
  );
  const s = Buffer.concat(encodeStream(FCGI_STDOUT, 3, 'abc', 2));
  t.same([...s], [1, FCGI_STDOUT, 0, 3, 0, 2, 6, 0, 0x61, 0x62, 0, 0, 0, 0, 0, 0, 1, FCGI_STDOUT, 0, 3, 0, 1, 7, 0, 0x63, 0, 0, 0, 0, 0, 0, 0]);
});

/* ------------------------------------------------------------------ */

interface Flat {
  stdout: string;
  stderr: string[];
  stdoutEnds: number;
  end?: [number, number];
  trailing: string;
  error?: string;
}

/** run the parser over `chunks`; check zero-copy; merge adjacent data (splits cut it differently) */
function runParser(chunks: Buffer[], id = 1): { flat: Flat; copied: number } {
  const p = new RecordParser(id);
  const flat: Flat = { stdout: '', stderr: [], stdoutEnds: 0, trailing: '' };
  let copied = 0;
  let lastErr = false;
  for (const c of chunks) {
    const evs: RecordEvent[] = p.feed(c);
    for (const e of evs) {
      if ((e.type === 'stdout' || e.type === 'stderr' || e.type === 'trailing') && e.data.buffer !== c.buffer) copied++;
      if ((e.type === 'stdout' || e.type === 'stderr') && e.data.length === 0) copied++;
      switch (e.type) {
        case 'stdout':
          flat.stdout += e.data.toString('latin1');
          lastErr = false;
          break;
        case 'stderr':
          if (lastErr) flat.stderr[flat.stderr.length - 1] += e.data.toString('latin1');
          else flat.stderr.push(e.data.toString('latin1'));
          lastErr = true;
          break;
        case 'stdout-end':
          flat.stdoutEnds++;
          lastErr = false;
          break;
        case 'end':
          flat.end = [e.appStatus, e.protocolStatus];
          break;
        case 'trailing':
          flat.trailing += e.data.toString('latin1');
          break;
        case 'error':
          flat.error = e.message;
          break;
      }
    }
  }
  return { flat, copied };
}

function reply(): Buffer {
  return Buffer.concat([
    encodeRecord(FCGI_STDOUT, 1, 'Status: 404 Not Found\r\nX-A: b\r\nContent-type: text/html\r\n\r\nhel'),
    encodeRecord(FCGI_STDERR, 1, 'PHP Notice: x.\n'),
    encodeRecord(FCGI_STDOUT, 1, 'lo'),
    ...encodeStream(FCGI_STDOUT, 1, ' world!', 3),
    encodeRecord(FCGI_STDOUT, 1),
    encodeEndRequest(1, 3, 0),
  ]);
}

t.test('RecordParser: whole stream', async (t) => {
  const { flat, copied } = runParser([reply()]);
  t.same(flat, {
    stdout: 'Status: 404 Not Found\r\nX-A: b\r\nContent-type: text/html\r\n\r\nhello world!',
    stderr: ['PHP Notice: x.\n'],
    stdoutEnds: 1,
    end: [3, 0],
    trailing: '',
  });
  t.equal(copied, 0);
});

t.test('RecordParser: every split point (2 and 3 chunks) agrees', async (t) => {
  const wire = reply();
  const whole = JSON.stringify(runParser([wire]).flat);
  let bad = 0;
  let copies = 0;
  let runs = 0;
  for (let i = 0; i <= wire.length; i++) {
    for (let j = i; j <= wire.length; j++) {
      /* copy each chunk into its own memory, as sockets deliver it */
      const chunks = [wire.subarray(0, i), wire.subarray(i, j), wire.subarray(j)].map((c) => {
        const own = Buffer.alloc(c.length); // unpooled: its own memory
        c.copy(own);
        return own;
      });
      const r = runParser(chunks);
      runs++;
      if (JSON.stringify(r.flat) !== whole) bad++;
      copies += r.copied;
    }
  }
  t.equal(bad, 0, `${runs} splits agree`);
  t.equal(copies, 0, 'data events are always subarrays of the chunk fed, never empty');
  /* one byte at a time */
  const bytes = [...wire].map((b) => Buffer.from([b]));
  t.equal(JSON.stringify(runParser(bytes).flat), whole, 'byte by byte');
});

t.test('RecordParser: padding is skipped, END_REQUEST ends, trailing bytes reported', async (t) => {
  const p = new RecordParser();
  const wire = Buffer.concat([encodeRecord(FCGI_STDOUT, 1, 'x'), encodeEndRequest(1, 0xffffffff, 3), L('junk')]);
  const evs = p.feed(wire);
  t.same(
    evs.map((e) => e.type),
    ['stdout', 'end', 'trailing'],
  );
  t.same(evs[1], { type: 'end', appStatus: 0xffffffff, protocolStatus: 3 });
  t.ok(p.ended);
  t.ok(p.atBoundary);
  /* a short END_REQUEST body reads as zeros */
  const short = Buffer.from([1, FCGI_END_REQUEST, 0, 1, 0, 1, 0, 0, 9]);
  t.same(new RecordParser().feed(short), [{ type: 'end', appStatus: 0x09000000, protocolStatus: 0 }]);
  /* mid-record state */
  const q = new RecordParser();
  q.feed(encodeRecord(FCGI_STDOUT, 1, 'abc').subarray(0, 10));
  t.notOk(q.atBoundary);
  t.notOk(q.ended);
});

t.test('RecordParser: protocol errors in nginx words, at the bad byte', async (t) => {
  const cases: Array<[number[], string]> = [
    [[2], 'upstream sent unsupported FastCGI protocol version: 2'],
    [[0x48, 0x54, 0x54, 0x50], 'upstream sent unsupported FastCGI protocol version: 72'],
    [[1, FCGI_STDIN], 'upstream sent invalid FastCGI record type: 5'],
    [[1, 0], 'upstream sent invalid FastCGI record type: 0'],
    [[1, 12], 'upstream sent invalid FastCGI record type: 12'],
    [[1, FCGI_BEGIN_REQUEST], 'upstream sent invalid FastCGI record type: 1'],
    [[1, FCGI_STDOUT, 1], 'upstream sent unexpected FastCGI request id high byte: 1'],
    [[1, FCGI_STDOUT, 0, 2], 'upstream sent unexpected FastCGI request id low byte: 2'],
  ];
  for (const [bytes, msg] of cases) {
    const p = new RecordParser();
    const evs = p.feed(Buffer.from(bytes));
    t.same(evs, [{ type: 'error', message: msg }], msg);
    t.ok(p.failed);
    t.same(p.feed(L('more')), [], 'nothing after an error');
  }
  /* after good records */
  const p = new RecordParser();
  const evs = p.feed(Buffer.concat([encodeRecord(FCGI_STDOUT, 1, 'ok'), Buffer.from([1, 9, 0, 1])]));
  t.same(
    evs.map((e) => e.type),
    ['stdout', 'error'],
  );
  /* another request id */
  t.same(new RecordParser(0x0102).feed(Buffer.concat([encodeRecord(FCGI_STDOUT, 0x0102, 'x')]))[0], { type: 'stdout', data: L('x') });
});

t.test('stderrLogText trims as nginx', async (t) => {
  t.equal(stderrLogText(L('PHP Warning: x.\n')), 'PHP Warning: x');
  t.equal(stderrLogText(L('a . \r\n.')), 'a');
  t.equal(stderrLogText(L('\n\n')), '');
  t.equal(stderrLogText(L(' lead')), ' lead');
});

/* ------------------------------------------------------------------ */

function parseHead(chunks: Buffer[], limit = 4096): { r: HeadResult; body: number } {
  const p = new CgiHeaderParser(limit);
  let base = 0;
  for (const c of chunks) {
    const r = p.feed(c);
    if (r.state === 'done') return { r, body: base + r.bodyOffset };
    if (r.state === 'error') return { r, body: -1 };
    base += c.length;
  }
  return { r: { state: 'more' }, body: -1 };
}

function head(text: string, limit = 4096): { head?: CgiHead; body: number; error?: string; more?: boolean } {
  const { r, body } = parseHead([L(text)], limit);
  if (r.state === 'done') return { head: r.head, body };
  if (r.state === 'error') return { error: r.message, body };
  return { more: true, body };
}

t.test('CGI header: status, Location, defaults', async (t) => {
  const a = head('Status: 404 Not Found\r\nX-A: b\r\nContent-Type: text/html\r\n\r\nbody');
  t.same(a.head, {
    status: 404,
    statusLine: '404 Not Found',
    headers: [
      { name: 'Status', value: '404 Not Found' },
      { name: 'X-A', value: 'b' },
      { name: 'Content-Type', value: 'text/html' },
    ],
  });
  t.equal(a.body, 'Status: 404 Not Found\r\nX-A: b\r\nContent-Type: text/html\r\n\r\n'.length);
  const loc = head('Location: /there\n\n');
  t.same(loc.head, { status: 302, statusLine: '302 Moved Temporarily', headers: [{ name: 'Location', value: '/there' }] });
  t.same(head('location: http://x/\r\nstatus: 301\r\n\r\n').head?.status, 301, 'Status wins over Location, any case');
  t.same(head('Content-type: text/plain\n\n').head, { status: 200, statusLine: '200 OK', headers: [{ name: 'Content-type', value: 'text/plain' }] });
  t.same(head('\r\nbody'), { head: { status: 200, statusLine: '200 OK', headers: [] }, body: 2 });
  t.same(head('\nbody'), { head: { status: 200, statusLine: '200 OK', headers: [] }, body: 1 });
  t.same(head('Status: 200\r\nStatus: 500\r\n\r\n').head?.status, 200, 'the first Status counts');
  t.same(head('Status: abc\r\n\r\n'), { error: 'upstream sent invalid status "abc"', body: -1 });
  t.same(head('Status: 20\r\n\r\n'), { error: 'upstream sent invalid status "20"', body: -1 });
  t.equal(head('Status: 4040 x\r\n\r\n').head?.status, 404, 'three digits are read');
});

t.test('CGI header: line syntax as nginx', async (t) => {
  t.same(head('X:   a  b   \r\nY:\r\nZ: \n\n').head?.headers, [
    { name: 'X', value: 'a  b' },
    { name: 'Y', value: '' },
    { name: 'Z', value: '' },
  ]);
  t.same(head('NoColon\r\nA: b\n\n').head?.headers, [
    { name: 'NoColon', value: '' },
    { name: 'A', value: 'b' },
  ]);
  t.same(head('HTTP/1.1 200 OK\r\nA: b\r\n\r\n').head?.headers, [{ name: 'A', value: 'b' }], "IIS's status line is skipped");
  t.same(head('X_Under@score: 1\r\n\r\n').head?.headers, [{ name: 'X_Under@score', value: '1' }]);
  t.same(head('A: b\r\r\n\r\n').head?.headers, [{ name: 'A', value: 'b' }], 'CR CR LF');
  t.same(head('A: tab\there\r\n\r\n').head?.headers, [{ name: 'A', value: 'tab\there' }]);
  t.same(head('X A: b\r\n\r\n').error, 'upstream sent invalid header: "X\\x20..."');
  t.same(head(' A: b\r\n\r\n').error, 'upstream sent invalid header: "\\x20..."');
  t.same(head(': b\r\n\r\n').error, 'upstream sent invalid header: "\\x3a..."');
  t.same(head('A: b\rc\r\n\r\n').error, 'upstream sent invalid header: "A: b\r\\x63..."');
  t.same(head('A: b\x00\r\n\r\n').error, 'upstream sent invalid header: "A: b\\x00..."');
  t.same(head('\rx').error, 'upstream sent invalid header: "\r\\x78..."');
  t.same(head('A: b\r\n\r'), { more: true, body: -1 });
});

t.test('CGI header: size bound', async (t) => {
  const text = 'X-Long: ' + 'v'.repeat(40) + '\r\n\r\n';
  t.equal(head(text, text.length).body, text.length, 'a header of exactly the limit fits');
  t.same(head(text + 'body', text.length - 1), { error: 'upstream sent too big header', body: -1 });
  t.same(head('X: 1\r\n', 6), { error: 'upstream sent too big header', body: -1 }, 'the limit reached without the blank line');
  /* across chunks */
  const { r } = parseHead([L('X: 12345\r\n'), L('Y: 12345\r\n'), L('\r\n')], 20);
  t.same(r, { state: 'error', message: 'upstream sent too big header' });
  const p = new CgiHeaderParser(20);
  p.feed(L('X: 12345678901234567890'));
  t.same(p.feed(L('\r\n\r\n')), { state: 'error', message: 'upstream sent too big header' }, 'errors stick');
});

t.test('CGI header: every split agrees; body offset in the chunk', async (t) => {
  const text = 'Status: 404 Not Found\r\nX-A: b\nLocation: /x\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\n\r\nthe body';
  const buf = L(text);
  /* the head and the absolute body offset (bodyOffset itself is relative to the last chunk) */
  const outcome = (chunks: Buffer[]): string => {
    const { r, body } = parseHead(chunks);
    return JSON.stringify([r.state === 'done' ? r.head : r, body]);
  };
  const whole = outcome([buf]);
  let bad = 0;
  for (let i = 0; i <= buf.length; i++) {
    for (let j = i; j <= buf.length; j++) {
      if (outcome([buf.subarray(0, i), buf.subarray(i, j), buf.subarray(j)]) !== whole) bad++;
    }
  }
  t.equal(bad, 0);
  t.equal(parseHead([buf]).body, text.indexOf('the body'));
  /* once done, later chunks are all body */
  const p = new CgiHeaderParser();
  t.equal(p.feed(L('A: b\n\nxy')).state, 'done');
  t.ok(p.done);
  const again = p.feed(L('more'));
  t.equal(again.state === 'done' ? again.bodyOffset : -1, 0);
});

t.test('CGI header over records: header split across STDOUT records and chunks', async (t) => {
  const headText = 'Status: 201 Created\r\nX-Powered-By: PHP/8.2\r\nContent-type: text/plain;charset=UTF-8\r\n\r\n';
  const wire = Buffer.concat([
    ...encodeStream(FCGI_STDOUT, 1, headText + 'first', 7),
    encodeRecord(FCGI_STDERR, 1, 'warn\n'),
    ...encodeStream(FCGI_STDOUT, 1, ' second', 5),
    encodeRecord(FCGI_STDOUT, 1),
    encodeEndRequest(1, 0),
  ]);
  let bad = 0;
  for (let cut = 0; cut <= wire.length; cut++) {
    const rp = new RecordParser();
    const hp = new CgiHeaderParser(256);
    let status = 0;
    let body = '';
    let ended = false;
    for (const c of [wire.subarray(0, cut), wire.subarray(cut)]) {
      for (const e of rp.feed(c)) {
        if (e.type === 'stdout') {
          if (!hp.done) {
            const r = hp.feed(e.data);
            if (r.state === 'done') {
              status = r.head.status;
              body += e.data.subarray(r.bodyOffset).toString('latin1');
            }
          } else body += e.data.toString('latin1');
        } else if (e.type === 'end') ended = true;
      }
    }
    if (status !== 201 || body !== 'first second' || !ended) bad++;
  }
  t.equal(bad, 0);
});
