import { NGINX_VERSION, PACKAGE_ROOT, PROGRAM, VERSION } from '../core/version.js';
import { defaultPrefix } from './paths.js';

/*
 * What `-v` and `-V` print (nginx's ngx_show_version_info), in a module of
 * its own: bin/redis2d answers a lone `-v`/`-V` with it without loading
 * the program (Test::Nginx runs `-V` before every start).
 */
export function versionText(full: boolean): string {
  let out = `${PROGRAM} version: ${PROGRAM}/${VERSION} (nginx/${NGINX_VERSION})\n`;
  if (full) {
    out +=
      `built by node ${process.version}\n` +
      `configure arguments: --prefix=${defaultPrefix(PACKAGE_ROOT).prefix}/ --add-module=redis2 --add-module=echo ` +
      `--add-module=set_misc --add-module=ndk --with-http_stub_status_module\n`;
  }
  return out;
}
