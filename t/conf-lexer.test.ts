import t from 'tap';
import { Lexer, TokenEnd } from '../lib/conf/lexer.js';
import { ConfError } from '../lib/conf/errors.js';

function words(src: string): string[][] {
  const lx = new Lexer(Buffer.from(src, 'latin1'), '/x.conf');
  const out: string[][] = [];
  for (;;) {
    const st = lx.next();
    if (st.end === TokenEnd.FileDone) return out;
    out.push(st.args);
  }
}

function failure(src: string): string {
  try {
    words(src);
  } catch (e) {
    if (e instanceof ConfError) return e.format();
    throw e;
  }
  return 'no error';
}

t.test('quotes and escapes follow ngx_conf_read_token', async (t) => {
  t.same(words('a "b c" \'d\';'), [['a', 'b c', 'd']]);
  t.same(words('a "x\\"y" "t\\tn\\n" "q\\z";'), [['a', 'x"y', 't\tn\n', 'q\\z']]);
  t.same(words('a b\\ c;'), [['a', 'b\\ c']]);
  t.same(words('a ${x}y;'), [['a', '${x}y']], 'brace after $ stays in the word');
  t.equal(failure('a ${x}y{;'), 'unexpected ";" in /x.conf:1', 'a brace elsewhere opens a block');
  t.same(words('a # c ; d\n b;'), [['a', 'b']]);
});

t.test('errors name the line', async (t) => {
  t.equal(failure('a "b"c;'), 'unexpected "c" in /x.conf:1');
  t.equal(failure('a;\n;'), 'unexpected ";" in /x.conf:2');
  t.equal(failure('a b'), 'unexpected end of file, expecting ";" or "}" in /x.conf:1');
  t.equal(failure('a "b\n\n'), 'unexpected end of file, expecting ";" or "}" in /x.conf:3');
  t.equal(failure('a b }'), 'unexpected "}" in /x.conf:1');
});
