import { readFileSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { HTTP_LMT_CONF, HTTP_LOC_CONF, HTTP_MAIN_CONF, HTTP_SRV_CONF, TAKE1 } from '../../conf/command.js';
import type { Conf } from '../../conf/parser.js';
import { errnoSuffix } from '../../core/errno.js';
import { basicCredentials } from '../../http/auth_user.js';
import { evalComplexValue } from '../../http/eval.js';
import { defineHttpModule, locConf, type HttpModule } from '../../http/module.js';
import { DECLINED, OK, type Request } from '../../http/request.js';
import { compileComplexValue, type ComplexValue } from '../../http/script.js';
import { crypt } from './crypt.js';

/*
 * ngx_http_auth_basic_module (access phase): `auth_basic REALM` (or off)
 * with `auth_basic_user_file FILE` (both may hold variables) asks for
 * Basic credentials and checks them against an htpasswd file read at each
 * request, as nginx reads it: `user:hash[:comment]` lines, `#` comments.
 * A refusal is 401 with `WWW-Authenticate: Basic realm="REALM"`; `satisfy`
 * decides with the other access handlers (lib/http/phases.ts).
 */

interface AuthBasicLocConf {
  /** undefined: unset; null: merged to nothing */
  realm: ComplexValue | null | undefined;
  userFile: { cv: ComplexValue; runtimePrefix: string | undefined } | null | undefined;
}

function authBasic(cf: Conf): string | undefined {
  const conf = locConf(cf, authBasicModule);
  if (conf.realm !== undefined) return 'is duplicate';
  conf.realm = compileComplexValue(cf, cf.args[1]!);
  return undefined;
}

function authBasicUserFile(cf: Conf): string | undefined {
  const conf = locConf(cf, authBasicModule);
  if (conf.userFile !== undefined) return 'is duplicate';
  let v = cf.args[1]!;
  // ngx_http_compile_complex_value with conf_prefix: a value not starting with a variable gets the prefix now
  let runtimePrefix: string | undefined;
  if (v.length === 0 || v[0] !== '$') {
    if (!isAbsolute(v)) v = cf.cycle.confPrefix + v;
  } else runtimePrefix = cf.cycle.confPrefix;
  conf.userFile = { cv: compileComplexValue(cf, v), runtimePrefix };
  return undefined;
}

function setRealm(r: Request, realm: string): number {
  r.headersOut.push(['WWW-Authenticate', `Basic realm="${realm}"`]);
  return 401;
}

const enum St {
  Login,
  Passwd,
  Skip,
}

/** the password field of `user` in an htpasswd file (nginx's sw_login/sw_passwd/sw_skip scan), or undefined */
export function findUser(buf: Buffer, userWithColon: Buffer): Buffer | undefined {
  let state = St.Login;
  let login = 0;
  let passwd = 0;
  const ulen = userWithColon.length - 1;
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i]!;
    switch (state) {
      case St.Login:
        if (login === 0) {
          if (c === 0x23 || c === 0x0d) {
            state = St.Skip;
            break;
          }
          if (c === 0x0a) break;
        }
        // the user's bytes then the `:` that followed it in the header
        if (c !== userWithColon[login]) {
          state = St.Skip;
          break;
        }
        if (login === ulen) {
          state = St.Passwd;
          passwd = i + 1;
        }
        login++;
        break;
      case St.Passwd:
        if (c === 0x0a || c === 0x0d || c === 0x3a) return buf.subarray(passwd, i);
        break;
      case St.Skip:
        if (c === 0x0a) {
          state = St.Login;
          login = 0;
        }
        break;
    }
  }
  return state === St.Passwd ? buf.subarray(passwd) : undefined;
}

export function authBasicHandler(r: Request): number {
  const conf = r.locConf[authBasicModule.index] as AuthBasicLocConf | undefined;
  if (!conf || !conf.realm || !conf.userFile) return DECLINED;
  const realm = evalComplexValue(r, conf.realm);
  if (realm === 'off') return DECLINED;
  const cred = basicCredentials(r);
  if (cred === undefined) {
    r.log('info', 'no user/password was provided for basic authentication');
    return setRealm(r, realm);
  }
  let file = evalComplexValue(r, conf.userFile.cv);
  if (conf.userFile.runtimePrefix !== undefined && !file.startsWith('/')) file = conf.userFile.runtimePrefix + file;
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
    r.log(missing ? 'error' : 'crit', `open() "${file}" failed ${errnoSuffix(e)}`);
    return missing ? 403 : 500;
  }
  const user = cred.user.toString('latin1');
  const field = findUser(buf, Buffer.concat([cred.user, Buffer.from(':')]));
  if (field === undefined) {
    r.log('error', `user "${user}" was not found in "${file}"`);
    return setRealm(r, realm);
  }
  // a C string: the stored hash ends at a NUL
  const nul = field.indexOf(0);
  const stored = (nul === -1 ? field : field.subarray(0, nul)).toString('latin1');
  if (crypt(cred.passwd, stored) === stored) return OK;
  r.log('error', `user "${user}": password mismatch`);
  return setRealm(r, realm);
}

const CTX = HTTP_MAIN_CONF | HTTP_SRV_CONF | HTTP_LOC_CONF | HTTP_LMT_CONF;

export const authBasicModule: HttpModule<unknown, unknown, AuthBasicLocConf> = defineHttpModule<unknown, unknown, AuthBasicLocConf>({
  name: 'http_auth_basic',
  createLocConf: () => ({ realm: undefined, userFile: undefined }),
  mergeLocConf(_cf, prev, conf) {
    if (conf.realm === undefined) conf.realm = prev.realm ?? null;
    if (conf.userFile === undefined) conf.userFile = prev.userFile ?? null;
  },
  phases: { access: authBasicHandler },
  commands: [
    { name: 'auth_basic', ctx: CTX, args: TAKE1, set: authBasic },
    { name: 'auth_basic_user_file', ctx: CTX, args: TAKE1, set: authBasicUserFile },
  ],
});
