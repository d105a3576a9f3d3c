import t, { type Test } from 'tap';
import { ReplyScanner, ScanResult, isReplyType } from '../lib/upstream/resp_scanner.js';

interface Outcome {
  result: 'more' | 'done' | 'invalid';
  /** absolute offset of the reply end (done) or the bad byte (invalid) */
  at: number;
  remaining: number;
}

function scanChunks(chunks: Buffer[], expected: number): Outcome {
  const sc = new ReplyScanner(expected);
  let base = 0;
  for (const c of chunks) {
    const r = sc.feed(c);
    if (r === ScanResult.Done) return { result: 'done', at: base + sc.end, remaining: sc.remaining };
    if (r === ScanResult.Invalid) return { result: 'invalid', at: base + sc.end, remaining: sc.remaining };
    base += c.length;
  }
  return { result: 'more', at: base, remaining: sc.remaining };
}

function scan(text: string, expected: number): Outcome {
  return scanChunks([Buffer.from(text, 'latin1')], expected);
}

/* every way to cut `buf` at the offsets whose bits are set in `mask` */
function cut(buf: Buffer, mask: number): Buffer[] {
  const out: Buffer[] = [];
  let from = 0;
  for (let i = 1; i < buf.length; i++) {
    if (mask & (1 << (i - 1))) {
      out.push(buf.subarray(from, i));
      from = i;
    }
  }
  out.push(buf.subarray(from));
  return out;
}

/** Same outcome for every split: all 2^(n-1) splits when short, else every 1- and 2-cut split. */
function checkSplits(t: Test, text: string, expected: number): Outcome {
  const buf = Buffer.from(text, 'latin1');
  const whole = scanChunks([buf], expected);
  let bad = 0;
  if (buf.length <= 13) {
    for (let mask = 0; mask < 1 << (buf.length - 1); mask++) {
      const o = scanChunks(cut(buf, mask), expected);
      if (JSON.stringify(o) !== JSON.stringify(whole)) bad++;
    }
  } else {
    for (let i = 0; i <= buf.length; i++) {
      for (let j = i; j <= buf.length; j++) {
        const o = scanChunks([buf.subarray(0, i), buf.subarray(i, j), buf.subarray(j)], expected);
        if (JSON.stringify(o) !== JSON.stringify(whole)) bad++;
      }
    }
  }
  t.equal(bad, 0, `every split of ${JSON.stringify(text)} agrees`);
  return whole;
}

t.test('RESP2 frames the module knows', async (t) => {
  const cases: Array<[string, number, Outcome]> = [
    ['+OK\r\n', 1, { result: 'done', at: 5, remaining: 0 }],
    ['-ERR wrong\r\n', 1, { result: 'done', at: 12, remaining: 0 }],
    [':42\r\n', 1, { result: 'done', at: 5, remaining: 0 }],
    ['$5\r\nhello\r\n', 1, { result: 'done', at: 11, remaining: 0 }],
    ['$0\r\n\r\n', 1, { result: 'done', at: 6, remaining: 0 }],
    ['$-1\r\n', 1, { result: 'done', at: 5, remaining: 0 }],
    ['*-1\r\n', 1, { result: 'done', at: 5, remaining: 0 }],
    ['*0\r\n', 1, { result: 'done', at: 4, remaining: 0 }],
    ['*2\r\n$1\r\na\r\n$-1\r\n', 1, { result: 'done', at: 16, remaining: 0 }],
    ['$4\r\na\r\nb\r\n', 1, { result: 'done', at: 10, remaining: 0 }],
    ['+a\rb\r\n', 1, { result: 'done', at: 6, remaining: 0 }],
    ['+a\r\r\n', 1, { result: 'done', at: 5, remaining: 0 }],
    ['+OK\r\n$5\r\nhello\r\n:1\r\n', 3, { result: 'done', at: 20, remaining: 0 }],
    ['+OK\r\n$5\r\nhel', 2, { result: 'more', at: 12, remaining: 1 }],
    ['$-1\r\n*1\r\n:1\r\n', 2, { result: 'done', at: 13, remaining: 0 }],
  ];
  for (const [text, n, want] of cases) t.same(checkSplits(t, text, n), want, JSON.stringify(text));
});

t.test('extra bytes: done before the end of the input', async (t) => {
  t.same(checkSplits(t, '+PONG\r\n+PONG\r\n', 1), { result: 'done', at: 7, remaining: 0 });
  t.same(checkSplits(t, ':1\r\nxyz', 1), { result: 'done', at: 4, remaining: 0 });
});

t.test('malformed input: the byte the module rejects', async (t) => {
  const cases: Array<[string, number, number]> = [
    ['x', 1, 0],
    ['+OK\r\ngarbage', 2, 5],
    ['$abc\r\n', 1, 1],
    ['$3\r\nabcd\r\n', 1, 7],
    ['$3\r\nabc\rx', 1, 8],
    ['$1x\r\n', 1, 2],
    ['$1\rx', 1, 3],
    ['$-x', 1, 2],
    ['$-1x', 1, 3],
    ['$01\r\n', 1, 2],
    ['*1\r\n\r\n', 1, 4],
    ['*a\r\n', 1, 1],
    ['$\r\n', 1, 1],
  ];
  for (const [text, n, pos] of cases) {
    t.same(checkSplits(t, text, n), { result: 'invalid', at: pos, remaining: n - (text.startsWith('+OK') ? 1 : 0) }, JSON.stringify(text));
  }
  t.equal(scan('$99999999999999999999\r\n', 1).result, 'invalid', 'absurd length');
});

t.test('beyond the module: nested aggregates and RESP3', async (t) => {
  const exec = '*3\r\n+OK\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n:7\r\n';
  t.same(checkSplits(t, exec, 1), { result: 'done', at: exec.length, remaining: 0 }, 'EXEC of LRANGE');
  const scanReply = '*2\r\n$1\r\n0\r\n*2\r\n$1\r\nk\r\n$1\r\nm\r\n';
  t.same(checkSplits(t, scanReply, 1), { result: 'done', at: scanReply.length, remaining: 0 }, 'SCAN');
  const xrange = '*1\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n';
  t.same(checkSplits(t, xrange + ':1\r\n', 2), { result: 'done', at: xrange.length + 4, remaining: 0 }, 'XRANGE');
  const deep = '*1\r\n*1\r\n*1\r\n*0\r\n';
  t.same(checkSplits(t, deep + '+x\r\n', 1), { result: 'done', at: deep.length, remaining: 0 }, 'nested empty arrays');
  t.same(checkSplits(t, '*2\r\n*-1\r\n$-1\r\n', 1), { result: 'done', at: 14, remaining: 0 });

  const resp3: Array<[string, number]> = [
    ['_\r\n', 1],
    [',3.14\r\n', 1],
    ['#t\r\n', 1],
    ['(3492890328409238509324850943850943825024385\r\n', 1],
    ['=15\r\ntxt:Some string\r\n', 1],
    ['!21\r\nSYNTAX invalid syntax\r\n', 1],
    ['%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n', 1],
    ['~3\r\n+a\r\n+b\r\n+c\r\n', 1],
    ['>2\r\n+message\r\n+x\r\n', 1],
    ['|1\r\n+key-popularity\r\n*2\r\n$1\r\na\r\n,0.19\r\n*2\r\n:2039123\r\n:9543892\r\n', 1],
    ['*2\r\n|1\r\n+ttl\r\n:3600\r\n:1\r\n:2\r\n', 1],
    ['%0\r\n', 1],
    ['|0\r\n:1\r\n', 1],
    ['%1\r\n$6\r\nserver\r\n%1\r\n+a\r\n~0\r\n', 1],
  ];
  for (const [text] of resp3) {
    t.same(checkSplits(t, text, 1), { result: 'done', at: text.length, remaining: 0 }, JSON.stringify(text));
  }
  // an attribute alone is not a reply
  t.same(scan('|1\r\n+a\r\n+b\r\n', 1), { result: 'more', at: 12, remaining: 1 });
  t.same(scan('%1\r\n+a\r\n', 1), { result: 'more', at: 8, remaining: 1 }, 'a map needs 2n elements');
});

t.test('bulk payloads are skipped by length, not scanned', async (t) => {
  const big = Buffer.alloc(1 << 20, 0x0d); // all CR: a line scanner would see garbage
  const head = Buffer.from(`$${big.length}\r\n`, 'latin1');
  const sc = new ReplyScanner(1);
  t.equal(sc.feed(head), ScanResult.More);
  for (let off = 0; off < big.length; off += 65536) t.equal(sc.feed(big.subarray(off, off + 65536)), ScanResult.More);
  t.equal(sc.feed(Buffer.from('\r\n+x\r\n', 'latin1')), ScanResult.Done);
  t.equal(sc.end, 2);
  t.ok(sc.atBoundary);
});

t.test('feed from an offset', async (t) => {
  const sc = new ReplyScanner(1);
  t.equal(sc.feed(Buffer.from('xx+OK\r\n', 'latin1'), 2), ScanResult.Done);
  t.equal(sc.end, 7);
});

t.test('first-byte check', async (t) => {
  for (const c of '+-:$*_,#(=!%~|>') t.ok(isReplyType(c.charCodeAt(0)), c);
  for (const c of 'aZ0 \r\nHx') t.notOk(isReplyType(c.charCodeAt(0)), JSON.stringify(c));
});
