import { createHash, createHmac, randomBytes } from 'node:crypto';
import { UNSET, atoi } from '../../conf/values.js';
import type { Request } from '../../http/request.js';
import { decodeBase32, encodeBase32 } from './base32.js';
import type { SetMiscFilter, UpstreamList } from './conf.js';
import {
  decodeBase64,
  decodeBase64url,
  decodeHex,
  encodeBase64,
  encodeBase64url,
  encodeHex,
  escapeUri,
  hashKeyLc,
  quoteJson,
  quotePgsql,
  quoteSql,
  unescapeUri,
} from './codecs.js';
import { localToday, strftimeGmt, strftimeLocal } from './time.js';

/*
 * set_misc's request side: one transform per directive, chosen by the
 * config side (module.ts) and run in rewrite order. A
 * transform returning undefined is the module's NGX_ERROR: the request
 * fails with 500 after the module's error line.
 */

const one = (f: (v: string) => string): SetMiscFilter => (_r, values) => f(values[0]!);

function fail(r: Request, msg: string): undefined {
  r.log('error', msg);
  return undefined;
}

const ALPHANUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const LCALPHA = 'abcdefghijklmnopqrstuvwxyz';

const latin1 = (s: string): Buffer => Buffer.from(s, 'latin1');

/** set_secure_random_*: `length` bytes of /dev/urandom, each taken modulo the alphabet */
function secureRandom(alphabet: string): SetMiscFilter {
  return (r, v) => {
    const n = atoi(v[0]!);
    // the module's wording, "set_random" included
    if (n < 1 || n > 64) return fail(r, `set_random: bad "length" argument: ${v[0]}`);
    const bytes = randomBytes(n);
    let out = '';
    for (let i = 0; i < n; i++) out += alphabet[bytes[i]! % alphabet.length];
    return out;
  };
}

/** the second's time, as nginx's cached ngx_time() */
const nowSec = (): Date => new Date(Math.floor(Date.now() / 1000) * 1000);

/** set_formatted_*_time: an empty format gives an empty value; a result strftime cannot fit fails */
function formattedTime(f: (fmt: string, now: Date) => string | undefined): SetMiscFilter {
  return (_r, v) => {
    if (v[0]!.length === 0) return '';
    const s = f(v[0]!, nowSec());
    return s === undefined || s.length === 0 ? undefined : s;
  };
}

const hmac = (alg: string): SetMiscFilter => (_r, v) => createHmac(alg, latin1(v[0]!)).update(latin1(v[1]!)).digest().toString('latin1');

/** ndk_get_upstream_list: names compare case-insensitively */
function findList(lists: UpstreamList[], name: string): UpstreamList | undefined {
  const l = name.toLowerCase();
  return lists.find((u) => u.name.length === name.length && u.name.toLowerCase() === l);
}

/** ngx_http_set_misc_set_hashed_upstream: ngx_hash_key_lc(key) % members */
export function hashedUpstreamPick(list: UpstreamList, key: string): string {
  const n = list.buckets.length;
  if (n === 0) return '';
  if (n === 1) return list.buckets[0]!;
  return list.buckets[hashKeyLc(key) % n]!;
}

export const FILTERS: Record<string, SetMiscFilter> = {
  set_unescape_uri: one(unescapeUri),
  set_escape_uri: one(escapeUri),
  set_quote_sql_str: one(quoteSql),
  set_quote_pgsql_str: one(quotePgsql),
  set_quote_json_str: one(quoteJson),
  set_encode_base64: one(encodeBase64),
  set_decode_base64: (r, v) => decodeBase64(v[0]!) ?? fail(r, 'set_decode_base64: invalid value'),
  set_encode_base64url: one(encodeBase64url),
  set_decode_base64url: (r, v) => decodeBase64url(v[0]!) ?? fail(r, 'set_decode_base64url: invalid value'),
  set_encode_base32: (_r, v, _s, _l, lcf) => encodeBase32(v[0]!, lcf.base32Padding !== 0, lcf.base32Alphabet!),
  // an undecodable value is not an error for the module: the variable becomes empty
  set_decode_base32: (_r, v, _s, _l, lcf) => decodeBase32(v[0]!, lcf.basis32) ?? '',
  set_encode_hex: one(encodeHex),
  set_decode_hex: (r, v) => decodeHex(v[0]!) ?? fail(r, 'set_decode_hex: invalid value'),
  set_md5: one((v) => createHash('md5').update(latin1(v)).digest('hex')),
  set_sha1: one((v) => createHash('sha1').update(latin1(v)).digest('hex')),
  set_hmac_sha1: hmac('sha1'),
  set_hmac_sha256: hmac('sha256'),
  set_if_empty: (_r, v) => (v[0]!.length ? v[0]! : v[1]!),
  set_hashed_upstream: (r, v, step, lists) => {
    let list = step.list;
    let key = v[0]!;
    if (!list) {
      list = findList(lists, v[0]!);
      if (!list) return fail(r, `set_hashed_upstream: upstream list "${v[0]}" not defined yet`);
      key = v[1]!;
    }
    return hashedUpstreamPick(list, key);
  },
  set_random: (r, v) => {
    let from = atoi(v[0]!);
    if (from === -1) return fail(r, `set_random: bad "from" argument: ${v[0]}`);
    let to = atoi(v[1]!);
    if (to === -1) return fail(r, `set_random: bad "to" argument: ${v[1]}`);
    if (from > to) [from, to] = [to, from];
    return String(from + Math.floor(Math.random() * (to - from + 1)));
  },
  set_secure_random_alphanum: secureRandom(ALPHANUM),
  set_secure_random_lcalpha: secureRandom(LCALPHA),
  set_rotate: (r, v, _s, _l, lcf) => {
    let from = atoi(v[1]!);
    if (from === -1) return fail(r, `set_rotate: bad "from" argument value: "${v[1]}"`);
    let to = atoi(v[2]!);
    if (to === -1) return fail(r, `set_rotate: bad "to" argument value: "${v[2]}"`);
    if (from > to) [from, to] = [to, from];
    // the last value: the variable's own, else the location's memory, else from - 1
    let current = lcf.current !== UNSET ? lcf.current : from - 1;
    if (v[0]!.length) {
      const n = atoi(v[0]!);
      if (n === -1) r.log('error', `set_rotate: bad current value: "${v[0]}"`);
      else current = n;
    }
    current++;
    if (current > to || current < from) current = from;
    lcf.current = current;
    return String(current);
  },
  set_local_today: () => localToday(new Date()),
  set_formatted_gmt_time: formattedTime(strftimeGmt),
  set_formatted_local_time: formattedTime(strftimeLocal),
};

