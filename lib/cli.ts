import type { CliOptions } from './process/options.js';
import { Command, CommanderError } from 'commander';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { defaultPrefix, ensurePrefix } from './process/paths.js';
import { versionText } from './process/version_text.js';
import type { Cycle } from './conf/parser.js';
import { NGINX_VERSION, PACKAGE_ROOT, PROGRAM, VERSION } from './core/version.js';

/*
 * The command line, with nginx's flags and messages (docs/behaviour.md §1). Messages go
 * to stderr prefixed `redis2d: `, as nginx prefixes `nginx: `.
 *
 * Only what reading the command line needs is imported here: the
 * configuration loader (every module) comes with the first action that
 * judges a configuration, so `-v`/`-V`/`-h` (Test::Nginx runs `-V` before
 * each start) answer without loading it.
 */


export type { CliOptions };

function stderr(line: string): void {
  process.stderr.write(Buffer.from(`${PROGRAM}: ${line}\n`, 'latin1'));
}

function usage(): string {
  return [
    `${PROGRAM} version: ${PROGRAM}/${VERSION} (nginx/${NGINX_VERSION})`,
    `Usage: ${PROGRAM} [-?hvVtTq] [-s signal] [-p prefix]`,
    `             [-e filename] [-c filename] [-g directives]`,
    '',
    'Options:',
    '  -?,-h         : this help',
    '  -v            : show version and exit',
    '  -V            : show version and configure options then exit',
    '  -t            : test configuration and exit',
    '  -T            : test configuration, dump it and exit',
    '  -q            : suppress non-error messages during configuration testing',
    '  -s signal     : send signal to a master process: stop, quit, reopen, reload',
    `  -p prefix     : set prefix path (default: ${defaultPrefix(PACKAGE_ROOT).prefix}/)`,
    '  -e filename   : set error log file (default: logs/error.log)',
    '  -c filename   : set configuration file (default: conf/nginx.conf; an installed',
    '                  package without one there serves its bundled conf/nginx.conf)',
    '  -g directives : set global directives out of configuration file',
    '',
    '',
  ].join('\n');
}

/** Parse argv the way nginx's ngx_get_options does, through commander. */
export function parseArgs(argv: string[]): CliOptions {
  const program = new Command();
  program
    .name(PROGRAM)
    .helpOption(false)
    .allowExcessArguments(false)
    .exitOverride()
    .configureOutput({ writeErr: () => {}, writeOut: () => {} })
    .option('-h', 'help')
    .option('-?', 'help')
    .option('-v', 'version')
    .option('-V', 'version and configure arguments')
    .option('-t', 'test')
    .option('-T', 'test and dump')
    .option('-q', 'quiet')
    .option('-s <signal>', 'signal')
    .option('-p <prefix>', 'prefix')
    .option('-e <filename>', 'error log')
    .option('-c <filename>', 'configuration file')
    .option('-g <directives>', 'global directives');
  program.parse(argv, { from: 'user' });
  const o = program.opts<Record<string, string | boolean | undefined>>();
  return {
    help: Boolean(o.h || o['?']),
    version: Boolean(o.v),
    versionFull: Boolean(o.V),
    test: Boolean(o.t || o.T),
    dump: Boolean(o.T),
    quiet: Boolean(o.q),
    signal: o.s as string | undefined,
    prefix: o.p as string | undefined,
    errorLog: o.e as string | undefined,
    conf: o.c as string | undefined,
    globals: o.g as string | undefined,
  };
}

export function resolvePaths(opts: CliOptions): { prefix: string; confFile: string } {
  const dflt = defaultPrefix(PACKAGE_ROOT);
  let prefix = opts.prefix !== undefined ? resolve(opts.prefix) : dflt.prefix;
  if (prefix.length > 1 && prefix.endsWith('/')) prefix = prefix.slice(0, -1);
  if (opts.prefix === undefined && dflt.owned) ensurePrefix(prefix);
  let confFile = opts.conf !== undefined ? resolve(prefix, opts.conf) : resolve(prefix, 'conf/nginx.conf');
  // an installed package's own prefix holds no config until the user puts one there: the bundled one serves
  if (opts.conf === undefined && opts.prefix === undefined && dflt.owned && !existsSync(confFile)) {
    confFile = resolve(PACKAGE_ROOT, 'conf/nginx.conf');
  }
  return { prefix, confFile };
}

/** Load the config, printing warnings and errors in nginx's form; undefined on failure. */
export async function loadOrReport(opts: CliOptions, confFile: string, prefix: string): Promise<Cycle | undefined> {
  const [{ ConfError }, { loadConfig }] = await Promise.all([import('./conf/errors.js'), import('./process/config.js')]);
  try {
    const cycle = loadConfig({ confFile, prefix, globals: opts.globals });
    for (const w of cycle.warnings) stderr(`[${w.level}] ${w.text}`);
    return cycle;
  } catch (e) {
    if (!(e instanceof ConfError)) throw e;
    for (const w of e.warnings) stderr(`[${w.level}] ${w.text}`);
    if (e.afterParse && opts.test && !opts.quiet) stderr(`the configuration file ${confFile} syntax is ok`);
    stderr(`[${e.level}] ${e.format()}`);
    if (e.hint) stderr(e.hint);
    return undefined;
  }
}

/** a node:cluster worker (it runs this command line too), without loading node:cluster for the check */
function isClusterWorker(): boolean {
  return 'NODE_UNIQUE_ID' in process.env;
}

export async function main(argv: string[]): Promise<number> {
  let opts: CliOptions;
  try {
    opts = parseArgs(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      // commander names the option with its argument ('-c <filename>'): keep the flag only
      const m = /'(-[^' ]*)[^']*'/.exec(e.message);
      if (e.code === 'commander.optionMissingArgument' && m) {
        // nginx 1.22's words: -c/-e "file name", -p "directory name", -g/-s "parameter"
        stderr(`option "${m[1]}" requires ${m[1] === '-s' || m[1] === '-g' ? 'parameter' : m[1] === '-p' ? 'directory name' : 'file name'}`);
      } else {
        stderr(`invalid option: "${m ? m[1]!.replace(/^-+/, '') : e.message}"`);
      }
      return 1;
    }
    throw e;
  }

  // ngx_get_options judges the signal name while reading the options
  if (opts.signal !== undefined && !['stop', 'quit', 'reopen', 'reload'].includes(opts.signal)) {
    stderr(`invalid option: "-s ${opts.signal}"`);
    return 1;
  }

  if (opts.help || opts.version || opts.versionFull) {
    if (opts.help) process.stderr.write(usage());
    else process.stderr.write(versionText(opts.versionFull === true));
    return 0;
  }

  const { prefix, confFile } = resolvePaths(opts);

  if (opts.test) {
    const cycle = await loadOrReport(opts, confFile, prefix);
    if (!cycle) {
      stderr(`configuration file ${confFile} test failed`);
      return 1;
    }
    // redis2d's own notes, as at startup: what the configuration asks that changes nothing here
    const { noEffectDirectives } = await import('./modules/noop/module.js');
    for (const name of noEffectDirectives(cycle)) stderr(`[warn] the "${name}" directive has no effect in redis2d`);
    if (!opts.quiet) stderr(`the configuration file ${confFile} syntax is ok`);
    const { startupLogPath, testCycleFiles } = await import('./process/cycle.js');
    const { prefixed } = await import('./process/paths.js');
    const failed = testCycleFiles(cycle, startupLogPath(opts, (p) => prefixed(prefix, p)));
    if (failed) {
      stderr(`[emerg] ${failed}`);
      stderr(`configuration file ${confFile} test failed`);
      return 1;
    }
    if (!opts.quiet) stderr(`configuration file ${confFile} test is successful`);
    if (opts.dump) {
      for (const d of cycle.dump) {
        process.stdout.write(`# configuration file ${d.path}:\n`);
        process.stdout.write(d.content);
        process.stdout.write('\n');
      }
    }
    return 0;
  }

  if (opts.signal !== undefined) {
    const { signalProcess } = await import('./process/signals.js');
    return signalProcess(opts, prefix, confFile);
  }

  // `daemon on`: the daemon's node starts now, while this one loads and judges the configuration
  const { prespawnDaemon } = await import('./process/daemon.js');
  if (!isClusterWorker()) prespawnDaemon(confFile, opts.globals);
  const { run } = await import('./process/run.js');
  return run(opts, prefix, confFile);
}
