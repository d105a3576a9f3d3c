import { ConfError } from '../../conf/errors.js';
import type { Conf } from '../../conf/parser.js';
import { compileComplexValue } from '../../http/script.js';
import { Slot, type HeaderArg } from './conf.js';

/*
 * The arguments of the four directives, read as headers-more reads them
 * (ngx_http_headers_more_parse_directive): options (-s, -t, -r) anywhere
 * among the `Name: value` arguments, empty arguments skipped. Its messages
 * are logged at [error] without a file and line, as the module logs them.
 */

export interface ParsedArgs {
  statuses: number[] | undefined;
  types: string[] | undefined;
  replace: boolean;
  headers: HeaderArg[];
}

/** which directive: output or input side, set or clear */
export interface DirectiveKind {
  input: boolean;
  clear: boolean;
}

/** C's isspace */
function isSpace(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}

function fail(cf: Conf, msg: string): ConfError {
  return new ConfError(`${cf.args[0]}: ${msg}`, undefined, undefined, 'error');
}

/** the headers nginx keeps outside its header list on the response side, by lowercased name */
const OUTPUT_SLOTS: ReadonlyMap<string, Slot> = new Map([
  ['server', Slot.Server],
  ['date', Slot.Date],
  ['content-type', Slot.ContentType],
  ['content-length', Slot.ContentLength],
  ['location', Slot.Location],
]);
const INPUT_SLOTS: ReadonlyMap<string, Slot> = new Map([
  ['host', Slot.Host],
  ['content-length', Slot.ContentLength],
]);

/**
 * `Name: value` as the module splits it: the key runs from the first
 * non-blank to the first `:` or blank, the value from the next byte that is
 * neither (trailing blanks kept). The key's bytes are counted from the
 * first non-blank but taken from the argument's start, as the module does
 * (` X: v` gives the key ` `).
 */
export function splitHeader(raw: string): { key: string; value: string } {
  let keyLen = 0;
  let endOfKey = false;
  let valueStart = -1;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (keyLen === 0) {
      if (!isSpace(c)) keyLen = 1;
      continue;
    }
    if (!endOfKey) {
      if (c === 0x3a || isSpace(c)) endOfKey = true;
      else keyLen++;
      continue;
    }
    if (valueStart === -1 && c !== 0x3a && !isSpace(c)) valueStart = i;
  }
  return { key: raw.slice(0, keyLen), value: valueStart === -1 ? '' : raw.slice(valueStart) };
}

function parseHeader(cf: Conf, raw: string, kind: DirectiveKind): HeaderArg {
  const { key, value } = splitHeader(raw);
  if (key.length === 0) throw fail(cf, `no key found in the header argument: ${raw}`);
  const lower = key.toLowerCase();
  let prefix: string | undefined;
  if (key.endsWith('*')) {
    if (key.length === 1) throw fail(cf, `wildcard key too short: ${raw}`);
    prefix = lower.slice(0, -1);
  }
  const slots = kind.input ? INPUT_SLOTS : OUTPUT_SLOTS;
  return {
    key,
    lower,
    prefix,
    value: kind.clear || value.length === 0 ? undefined : compileComplexValue(cf, value),
    slot: slots.get(lower) ?? Slot.Generic,
  };
}

/** -s "200 404": decimal codes separated by blanks */
function parseStatuses(cf: Conf, list: string, out: number[]): void {
  let n = -1;
  for (let i = 0; i < list.length; i++) {
    const c = list.charCodeAt(i);
    if (isSpace(c)) {
      if (n !== -1) out.push(n);
      n = -1;
      continue;
    }
    if (c < 0x30 || c > 0x39) throw fail(cf, `invalid digit "${list[i]}" found in the status code list "${list}"`);
    n = (n === -1 ? 0 : n * 10) + (c - 0x30);
  }
  if (n !== -1) out.push(n);
}

/** -t "text/html text/plain": types separated by blanks or `;` */
function parseTypes(list: string, out: string[]): void {
  for (const t of list.split(/[ \t\n\v\f\r;]+/)) if (t.length) out.push(t);
}

export function parseArgs(cf: Conf, kind: DirectiveKind): ParsedArgs {
  const args = cf.args;
  const statuses: number[] = [];
  const types: string[] = [];
  const parsed: ParsedArgs = { statuses: undefined, types: undefined, replace: false, headers: [] };
  for (let i = 1; i < args.length; i++) {
    const arg = args[i]!;
    if (arg.length === 0) continue;
    if (arg.charCodeAt(0) !== 0x2d) {
      parsed.headers.push(parseHeader(cf, arg, kind));
      continue;
    }
    if (arg.length === 2) {
      const opt = arg[1];
      if (opt === 't' || (opt === 's' && !kind.input)) {
        if (i === args.length - 1) throw fail(cf, `option -${opt} takes an argument.`);
        i++;
        if (opt === 't') parseTypes(args[i]!, types);
        else parseStatuses(cf, args[i]!, statuses);
        continue;
      }
      if (opt === 'r' && kind.input) {
        parsed.replace = true;
        continue;
      }
    }
    throw fail(cf, `invalid option name: "${arg}"`);
  }
  // an option whose list came out empty restricts nothing
  if (statuses.length) parsed.statuses = statuses;
  if (types.length) parsed.types = types;
  return parsed;
}
