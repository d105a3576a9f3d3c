import type { CommandHandler } from './command.js';
import type { Conf } from './parser.js';
import { UNSET, atoi, parseFlag, parseMsec, parseSec, parseSize } from './values.js';

/*
 * The ngx_conf_set_*_slot family: generic handlers that store one argument
 * in one field of a module's conf, with nginx's duplicate and value checks.
 * `get` picks the conf object the directive writes to (main, srv or loc).
 */

type Getter<C> = (cf: Conf) => C;
type KeysOf<C, V> = { [K in keyof C]: C[K] extends V ? K : never }[keyof C];

/** on|off → 1|0 in a field that starts as UNSET (-1). */
export function flagSlot<C>(get: Getter<C>, key: KeysOf<C, number>): CommandHandler {
  return (cf, cmd) => {
    const conf = get(cf) as Record<PropertyKey, unknown>;
    if (conf[key] !== UNSET) return 'is duplicate';
    const v = parseFlag(cf.args[1]!);
    if (v === undefined) {
      throw cf.error(`invalid value "${cf.args[1]}" in "${cmd.name}" directive, it must be "on" or "off"`);
    }
    conf[key] = v ? 1 : 0;
  };
}

/** A string, once; the field starts as undefined. */
export function strSlot<C>(get: Getter<C>, key: KeysOf<C, string | undefined>): CommandHandler {
  return (cf) => {
    const conf = get(cf) as Record<PropertyKey, unknown>;
    if (conf[key] !== undefined) return 'is duplicate';
    conf[key] = cf.args[1]!;
  };
}

function numericSlot<C>(
  get: Getter<C>,
  key: KeysOf<C, number>,
  parse: (s: string) => number,
  invalid: string,
): CommandHandler {
  return (cf) => {
    const conf = get(cf) as Record<PropertyKey, unknown>;
    if (conf[key] !== UNSET) return 'is duplicate';
    const v = parse(cf.args[1]!);
    if (v === -1) return invalid;
    conf[key] = v;
  };
}

export const numSlot = <C>(get: Getter<C>, key: KeysOf<C, number>) => numericSlot(get, key, atoi, 'invalid number');
export const sizeSlot = <C>(get: Getter<C>, key: KeysOf<C, number>) => numericSlot(get, key, parseSize, 'invalid value');
export const msecSlot = <C>(get: Getter<C>, key: KeysOf<C, number>) => numericSlot(get, key, parseMsec, 'invalid value');
export const secSlot = <C>(get: Getter<C>, key: KeysOf<C, number>) => numericSlot(get, key, parseSec, 'invalid value');

/** One of fixed words (ngx_conf_set_enum_slot). */
export function enumSlot<C>(get: Getter<C>, key: KeysOf<C, number>, values: Record<string, number>): CommandHandler {
  return (cf) => {
    const conf = get(cf) as Record<PropertyKey, unknown>;
    if (conf[key] !== UNSET) return 'is duplicate';
    const word = cf.args[1]!.toLowerCase();
    const v = Object.prototype.hasOwnProperty.call(values, word) ? values[word] : undefined;
    if (v === undefined) throw cf.error(`invalid value "${cf.args[1]}"`);
    conf[key] = v;
  };
}

/** Several words OR-ed into a mask (ngx_conf_set_bitmask_slot); 0 means unset. */
export function bitmaskSlot<C>(get: Getter<C>, key: KeysOf<C, number>, masks: Record<string, number>): CommandHandler {
  return (cf) => {
    const conf = get(cf) as Record<PropertyKey, number>;
    for (let i = 1; i < cf.args.length; i++) {
      const word = cf.args[i]!.toLowerCase();
      const m = Object.prototype.hasOwnProperty.call(masks, word) ? masks[word] : undefined;
      if (m === undefined) throw cf.error(`invalid value "${cf.args[i]}"`);
      if (conf[key]! & m) cf.warn(`duplicate value "${cf.args[i]}"`);
      else conf[key] = conf[key]! | m;
    }
  };
}

/** ngx_conf_merge_*_value: inherit from the parent, else the default. */
export function mergeValue(conf: number, prev: number, dflt: number): number {
  return conf !== UNSET ? conf : prev !== UNSET ? prev : dflt;
}
