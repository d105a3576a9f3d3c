import t from 'tap';
import { encodeCommands, encodedSize } from '../lib/modules/redis2/resp.js';
import { PartKind } from '../lib/http/script.js';
import { redis2Module, type Redis2LocConf } from '../lib/modules/redis2/module.js';
import { load, location } from './helpers/rewrite.js';

t.test('commands become RESP arrays of bulk strings', async (t) => {
  t.equal(encodeCommands([['get', 'k']]).toString('latin1'), '*2\r\n$3\r\nget\r\n$1\r\nk\r\n');
  t.equal(encodeCommands([['set', 'k', '']]).toString('latin1'), '*3\r\n$3\r\nset\r\n$1\r\nk\r\n$0\r\n\r\n', 'empty argument');
  t.equal(
    encodeCommands([['set', 'a b', 'x\r\ny'], ['ping']]).toString('latin1'),
    '*3\r\n$3\r\nset\r\n$3\r\na b\r\n$4\r\nx\r\ny\r\n*1\r\n$4\r\nping\r\n',
    'spaces and CR LF are safe; several commands go in one buffer',
  );
  const bin = '\u0000\u00ff\u00e9';
  const b = encodeCommands([['set', 'k', bin]]);
  t.same([...b.subarray(b.length - 5, b.length - 2)], [0, 0xff, 0xe9], 'the bytes themselves');
  t.equal(b.toString('latin1'), `*3\r\n$3\r\nset\r\n$1\r\nk\r\n$3\r\n${bin}\r\n`, 'latin1 byte strings: one char, one byte');
  t.equal(encodedSize([['set', 'k', bin]]), b.length);
});

t.test('lengths with several digits and Buffer arguments', async (t) => {
  const big = Buffer.alloc(123456, 0x61);
  const b = encodeCommands([['set', 'big', big]]);
  t.equal(b.length, encodedSize([['set', 'big', big]]));
  t.equal(b.toString('latin1', 0, 30), '*3\r\n$3\r\nset\r\n$3\r\nbig\r\n$123456\r');
  t.equal(b.toString('latin1', b.length - 3), 'a\r\n');
  const args: string[] = [];
  for (let i = 0; i < 12; i++) args.push(String(i));
  t.equal(encodeCommands([args]).toString('latin1', 0, 5), '*12\r\n', 'a two-digit argument count');
});

t.test('raw queries keep RESP length markers literal, other $ are variables', async (t) => {
  const { servers } = load(`events {} http { server { listen 127.0.0.1:18999;
    location /a { redis2_raw_queries 2 "*1\\r\\n$4\\r\\nping\\r\\n*2\\r\\n$3\\r\\nget\\r\\n$arg_k\\r\\n"; redis2_pass 127.0.0.1:6379; }
    location /b { redis2_raw_query "get $1\\r\\n"; redis2_pass 127.0.0.1:6379; } } }`);
  const raw = (name: string) => (location(servers[0]!, name).locConf[redis2Module.index] as Redis2LocConf).rawQuery!.parts;
  const a = raw('/a');
  t.same(a.map((p) => p.kind === PartKind.Var), [false, false, false, false, false, true, false], 'only $arg_k is a variable');
  t.equal(a.map((p) => (p.kind === PartKind.Literal ? p.text : '<var>')).join(''), '*1\r\n$4\r\nping\r\n*2\r\n$3\r\nget\r\n<var>\r\n');
  const b = raw('/b');
  t.same(b.map((p) => p.kind), [PartKind.Literal, PartKind.Capture, PartKind.Literal], '`$1` not at a line start stays a capture');
});
