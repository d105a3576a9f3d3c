import t from 'tap';
import {
  decodeBase64,
  decodeHex,
  encodeBase64,
  encodeHex,
  escapeUri,
  hashKeyLc,
  quoteJson,
  quoteSql,
  unescapeUri,
} from '../lib/modules/set_misc/codecs.js';
import { hashedUpstreamPick } from '../lib/modules/set_misc/filters.js';
import { strftimeGmt } from '../lib/modules/set_misc/time.js';

/*
 * set_misc's transforms without a server (the differential tests in
 * setmisc-diff.test.ts hold them to Debian nginx; these pin the rules so a
 * machine without nginx still checks them). Byte strings are latin1.
 */

const utf8 = (s: string): string => Buffer.from(s, 'utf8').toString('latin1');

t.test('set_unescape_uri: the module patched decoder', async (t) => {
  t.equal(unescapeUri('a+b%20c'), 'a b c', '+ is a space, %20 too');
  t.equal(unescapeUri('%2B%2b'), '++', 'hex digits in either case');
  t.equal(unescapeUri('%zz'), 'zz', '% then a non-hex byte: the % goes, the byte stays');
  t.equal(unescapeUri('%4z'), '', '%X then a non-hex byte: all three go');
  t.equal(unescapeUri('x%4'), 'x', 'a truncated escape at the end goes');
  t.equal(unescapeUri('x%'), 'x');
  t.equal(unescapeUri('%%41'), '%41', 'an invalid escape does not start another');
  t.equal(unescapeUri('%+'), '+', 'a + right after % stays a +');
  t.equal(unescapeUri('%C3%A9'), utf8('é'), 'UTF-8 bytes come out as bytes');
  t.equal(unescapeUri(''), '');
});

t.test('set_escape_uri: which bytes, uppercase hex', async (t) => {
  t.equal(escapeUri('a b'), 'a%20b');
  t.equal(escapeUri('"#%&+/:;<=>?'), '%22%23%25%26%2B%2F%3A%3B%3C%3D%3E%3F');
  t.equal(escapeUri('[\\]^{}'), '%5B%5C%5D%5E%7B%7D');
  t.equal(escapeUri("!$'()*,-.@_`|~AZaz09"), "!$'()*,-.@_`|~AZaz09", 'left alone');
  t.equal(escapeUri('\x00\x1f\x7f\x80\xff'), '%00%1F%7F%80%FF');
  t.equal(escapeUri(utf8('é')), '%C3%A9');
  t.equal(escapeUri(''), '');
  for (let c = 0; c < 256; c++) {
    const s = String.fromCharCode(c);
    t.equal(unescapeUri(escapeUri(s)), c === 0x2b ? '+' : s, `round trip of byte ${c}`);
  }
});

t.test('quoting', async (t) => {
  t.equal(quoteSql(''), "''");
  t.equal(quoteSql(`a'b"c\\d$e\x00\b\n\r\t\x1a`), `'a\\'b\\"c\\\\d\\$e\\0\\b\\n\\r\\t\\Z'`);
  t.equal(quoteSql(utf8("é'")), `'${utf8('é')}\\''`, 'high bytes untouched');
  t.equal(quoteJson(''), 'null');
  t.equal(quoteJson('a"b\\c\r\n\t\f\b\x01\x1f'), '"a\\"b\\\\c\\r\\n\\t\\f\\b\\u0001\\u001f"');
  t.equal(quoteJson(`/'$${utf8('中')}`), `"/'$${utf8('中')}"`, 'no escaping of / or high bytes');
});

t.test('base64 and hex as nginx decodes them', async (t) => {
  t.equal(encodeBase64('hello'), 'aGVsbG8=');
  t.equal(encodeBase64(''), '');
  t.equal(decodeBase64('aGVsbG8='), 'hello');
  t.equal(decodeBase64('aGVsbG8'), 'hello', 'padding optional');
  t.equal(decodeBase64('aGVsbG8=trailing'), 'hello', 'stops at =');
  t.equal(decodeBase64('YQ'), 'a');
  t.equal(decodeBase64('a'), undefined, 'a lone sextet');
  t.equal(decodeBase64('aGVsbG'), 'hell', 'six sextets: four bytes');
  t.equal(decodeBase64('@@@@'), undefined, 'outside the alphabet');
  t.equal(decodeBase64('YQ-_'), undefined, 'base64url letters are invalid here');
  t.equal(decodeBase64('===='), '');
  t.equal(encodeHex('\x00\xffA'), '00ff41', 'lowercase');
  t.equal(decodeHex('48656c6C6F'), 'Hello', 'either case');
  t.equal(decodeHex('4'), undefined, 'odd length');
  t.equal(decodeHex('0g'), undefined);
  t.equal(decodeHex(''), '');
});

t.test('set_hashed_upstream: ngx_hash_key_lc modulo the members', async (t) => {
  t.equal(hashKeyLc('abc'), (97 * 31 + 98) * 31 + 99);
  t.equal(hashKeyLc('ABC'), hashKeyLc('abc'), 'ASCII case folded');
  t.equal(hashKeyLc(utf8('Ä')), hashKeyLc(utf8('Ä')), 'high bytes as they are');
  t.not(hashKeyLc(utf8('Ä')), hashKeyLc(utf8('ä')), 'only ASCII letters fold (ngx_tolower)');
  // 32-bit wrap-around: the low 32 bits of nginx's 64-bit hash
  let h = 0n;
  const long = 'a-long-key-that-overflows-32-bits-many-times-over';
  for (const ch of long) h = (h * 31n + BigInt(ch.toLowerCase().charCodeAt(0))) & 0xffffffffffffffffn;
  t.equal(hashKeyLc(long), Number(h & 0xffffffffn));
  const list = { name: 'l', buckets: ['a', 'b', 'c'] };
  t.equal(hashedUpstreamPick(list, 'abc'), ['a', 'b', 'c'][hashKeyLc('abc') % 3]);
  t.equal(hashedUpstreamPick({ name: 'one', buckets: ['x'] }, 'anything'), 'x');
  t.equal(hashedUpstreamPick({ name: 'none', buckets: [] }, 'k'), '');
});

t.test('strftime in the C locale, UTC', async (t) => {
  const d = new Date(Date.UTC(2024, 0, 7, 5, 4, 3)); // a Sunday
  t.equal(strftimeGmt('%a, %d %b %Y %H:%M:%S GMT', d), 'Sun, 07 Jan 2024 05:04:03 GMT');
  t.equal(strftimeGmt('%A %B %e %j %u %w %U %W %V %G %y %C %p %I %Z %z %%', d), 'Sunday January  7 007 7 0 01 01 01 2024 24 20 AM 05 GMT +0000 %');
  t.equal(strftimeGmt('%F %T %D %R %s', d), `2024-01-07 05:04:03 01/07/24 05:04 ${d.getTime() / 1000}`);
  t.equal(strftimeGmt('%-d|%_m|%^a|%10B|%05y', d), '7| 1|SUN|   January|00024');
  t.equal(strftimeGmt('%Q %', d), '%Q %', 'unknown conversions copied');
  t.equal(strftimeGmt('x'.repeat(255), d), 'x'.repeat(255));
  t.equal(strftimeGmt('x'.repeat(256), d), undefined, 'no room for the NUL: strftime returns 0');
});
