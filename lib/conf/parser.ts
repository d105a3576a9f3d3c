import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import {
  ANY,
  ARGUMENT_NUMBER,
  BLOCK,
  CONF_MAX_ARGS,
  FLAG,
  MORE1,
  MORE2,
  type Command,
  type Module,
} from './command.js';
import { ConfError, type ConfWarning } from './errors.js';
import { globSync, hasWildcard } from './glob.js';
import { errnoSuffix as errnoText } from '../core/errno.js';
import { Lexer, TokenEnd, type Statement } from './lexer.js';
import { unimplementedHint } from './unimplemented.js';

/** A custom block handler (nginx's cf->handler), used by `types {}` and `map {}`. */
export type BlockHandler = (cf: Conf) => string | undefined | void;

export interface DumpedFile {
  path: string;
  content: Buffer;
}

/**
 * The exact inputs of one configuration load: the bytes of every file read
 * and what every wildcard `include` matched. A master hands its validated
 * load to its workers this way, so they parse what it checked, whatever
 * the files hold by the time they start.
 */
export interface ConfSnapshot {
  files: Array<[string, string]>;
  globs: Array<[string, string[]]>;
}

/** the snapshot of a finished load (file contents base64, for JSON IPC) */
export function snapshotOf(cycle: Cycle): ConfSnapshot {
  return { files: cycle.dump.map((d) => [d.path, d.content.toString('base64')]), globs: cycle.globs.map(([p, m]) => [p, [...m]]) };
}

/**
 * Everything one configuration load produces and every later stage reads:
 * the module confs, paths, the -T dump and the warnings.
 */
export class Cycle {
  readonly prefix: string;
  readonly confPrefix: string;
  readonly confFile: string;
  readonly modules: Module[];
  /** module name → commands with that name (several modules may share one) */
  readonly commands: Map<string, Command[]>;
  /** core module confs, by module index */
  readonly coreConfs: unknown[] = [];
  readonly dump: DumpedFile[] = [];
  /** every `include` pattern with wildcards and what it matched, in order (the snapshot's other half) */
  readonly globs: Array<[string, string[]]> = [];
  /** when set, files and glob matches come from here, not from the disk (a worker replaying its master's load) */
  readonly snapshot: ConfSnapshot | undefined;
  readonly warnings: ConfWarning[] = [];
  /** arbitrary module state keyed by module (http ctx, upstream list, ...) */
  readonly state = new Map<string, unknown>();

  constructor(opts: { prefix: string; confFile: string; modules: Module[]; snapshot?: ConfSnapshot }) {
    this.snapshot = opts.snapshot;
    this.prefix = opts.prefix;
    this.confFile = opts.confFile;
    this.confPrefix = opts.confFile.slice(0, opts.confFile.lastIndexOf('/') + 1) || './';
    this.modules = opts.modules;
    this.commands = new Map();
    opts.modules.forEach((m, i) => {
      m.index = i;
      for (const c of m.commands) {
        const list = this.commands.get(c.name);
        if (list) list.push(c);
        else this.commands.set(c.name, [c]);
      }
    });
  }

  /** ngx_conf_full_name against the prefix (pid, logs, root) */
  fullName(name: string): string {
    return isAbsolute(name) ? name : resolve(this.prefix, name);
  }

  /** ngx_conf_full_name against the conf prefix (include, mime.types) */
  confFullName(name: string): string {
    return isAbsolute(name) ? name : resolve(this.confPrefix, name);
  }
}

const enum ParseType {
  File,
  Block,
  Param,
}

/**
 * The parse state nginx calls ngx_conf_t: the current directive's words, its
 * place, the context it stands in, and the confs its handler writes to.
 */
export class Conf {
  readonly cycle: Cycle;
  /** the current directive: args[0] is its name */
  args: string[] = [];
  /** context bit the next directive is judged against (MAIN_CONF, HTTP_LOC_CONF, ...) */
  cmdType: number;
  /** the current level's conf holder; shape owned by the module that opened the block */
  ctx: unknown;
  /** custom handler for blocks whose lines are data, not directives */
  handler: BlockHandler | undefined;
  /** the statement end of the current directive (`;` or `{`) */
  end: TokenEnd = TokenEnd.Semicolon;

  private lexer: Lexer | undefined;
  /** files being parsed, outermost first, for include-cycle detection */
  private readonly fileStack: string[] = [];
  /** the contexts saved by enterBlock(), innermost last */
  private readonly entered: Array<{ cmdType: number; ctx: unknown; handler: BlockHandler | undefined; args: string[] }> = [];

  constructor(cycle: Cycle, cmdType: number, ctx: unknown) {
    this.cycle = cycle;
    this.cmdType = cmdType;
    this.ctx = ctx;
  }

  get file(): string | undefined {
    return this.lexer?.file;
  }

  get line(): number {
    return this.lexer?.line ?? 0;
  }

  /** A ConfError at the current place, as ngx_conf_log_error(NGX_LOG_EMERG, ...). */
  error(msg: string): ConfError {
    if (!this.lexer) return new ConfError(msg);
    return new ConfError(msg, this.lexer.file, this.lexer.line);
  }

  /** Record a `[warn]` with the current place, as nginx prints during parsing. */
  warn(msg: string, level: 'warn' | 'notice' = 'warn'): void {
    const where = this.lexer ? ` in ${this.lexer.file}:${this.lexer.line}` : '';
    this.cycle.warnings.push({ level, text: msg + where });
  }

  /** The current file and line, for storing with a value (errors found later name them). */
  where(): { file: string; line: number } {
    return { file: this.lexer?.file ?? 'command line', line: this.lexer?.line ?? 0 };
  }

  /** the raw inside of the block the current directive opened (Lua code: *_by_lua_block) */
  readLuaBlock(): string {
    return this.lexer!.readLuaBlock();
  }

  /** Parse a whole file in the current context (the main file, or `include`). */
  parseFile(path: string): void {
    let content: Buffer;
    try {
      content = this.readConf(path);
    } catch (err) {
      const op = (err as NodeJS.ErrnoException).code === 'EISDIR' ? 'read()' : 'open()';
      throw this.error(`${op} "${path}" failed ${errnoText(err)}`);
    }
    if (this.fileStack.includes(path)) {
      // nginx recurses until its stack overflows; name the include instead
      throw this.error(`include of "${path}" forms a cycle`);
    }
    if (!this.cycle.dump.some((d) => d.path === path)) this.cycle.dump.push({ path, content });

    const saved = this.lexer;
    this.lexer = new Lexer(content, path);
    this.fileStack.push(path);
    try {
      this.run(ParseType.File);
    } finally {
      this.fileStack.pop();
      this.lexer = saved;
    }
  }

  /** Parse `-g` directives (before the file, as nginx's ngx_conf_param). */
  parseParam(text: string): void {
    const saved = this.lexer;
    this.lexer = new Lexer(Buffer.from(text, 'latin1'), 'command line', true);
    try {
      this.run(ParseType.Param);
    } catch (e) {
      if (e instanceof ConfError && e.file === 'command line') e.line = -1;
      throw e;
    } finally {
      this.lexer = saved;
    }
  }

  /**
   * Parse the inside of a block just opened by the current directive, with
   * the given context and conf holder; restores both afterwards.
   */
  parseBlock(cmdType: number, ctx: unknown, handler?: BlockHandler): void {
    const saved = { cmdType: this.cmdType, ctx: this.ctx, handler: this.handler, args: this.args };
    this.cmdType = cmdType;
    this.ctx = ctx;
    this.handler = handler;
    try {
      this.run(ParseType.Block);
    } finally {
      this.cmdType = saved.cmdType;
      this.ctx = saved.ctx;
      this.handler = saved.handler;
      this.args = saved.args;
    }
  }

  /**
   * parseBlock() for a block directive with nothing left to do once its
   * block ends (`location`): the block is parsed by the loop already
   * running, its context saved on that loop's own stack, so nesting depth
   * costs heap, not call stack (nginx accepts thousands of nested
   * locations). The directive's handler must return right after.
   */
  enterBlock(cmdType: number, ctx: unknown): void {
    this.entered.push({ cmdType: this.cmdType, ctx: this.ctx, handler: this.handler, args: this.args });
    this.cmdType = cmdType;
    this.ctx = ctx;
    this.handler = undefined;
  }

  /** `include PATTERN` relative to the conf prefix, with glob(3) patterns. */
  include(pattern: string): void {
    const full = this.cycle.confFullName(pattern);
    if (!hasWildcard(full)) {
      this.parseFile(full);
      return;
    }
    const snap = this.cycle.snapshot;
    const matched = snap ? (snap.globs.find(([p]) => p === full)?.[1] ?? []) : globSync(full);
    // recorded in both cases: a load replayed from a snapshot is itself handed on (daemon → master → workers)
    this.cycle.globs.push([full, matched]);
    for (const f of matched) this.parseFile(f);
  }

  /** a config file's bytes: from the disk, or from the snapshot being replayed */
  private readConf(path: string): Buffer {
    const snap = this.cycle.snapshot;
    if (!snap) return readFileSync(path);
    const f = snap.files.find(([p]) => p === path);
    if (f) return Buffer.from(f[1], 'base64');
    const err: NodeJS.ErrnoException = new Error(`ENOENT: no such file or directory, open '${path}'`);
    err.code = 'ENOENT';
    err.errno = -2;
    throw err;
  }

  private run(type: ParseType): void {
    const lexer = this.lexer!;
    // blocks entered by enterBlock() in this loop: they end here, not in a nested run()
    const base = this.entered.length;
    for (;;) {
      const st: Statement = lexer.next();
      if (st.end === TokenEnd.BlockDone) {
        if (this.entered.length > base) {
          const saved = this.entered.pop()!;
          this.cmdType = saved.cmdType;
          this.ctx = saved.ctx;
          this.handler = saved.handler;
          this.args = saved.args;
          continue;
        }
        if (type !== ParseType.Block) throw this.error('unexpected "}"');
        return;
      }
      if (st.end === TokenEnd.FileDone) {
        if (type === ParseType.Block || this.entered.length > base) throw this.error('unexpected end of file, expecting "}"');
        return;
      }
      if (st.end === TokenEnd.BlockStart && type === ParseType.Param) {
        throw this.error('block directives are not supported in -g option');
      }
      this.args = st.args;
      this.end = st.end;

      if (this.handler) {
        if (st.end === TokenEnd.BlockStart) throw this.error('unexpected "{"');
        const rv = this.handler(this);
        if (typeof rv === 'string') throw this.error(rv);
        continue;
      }
      this.dispatch();
    }
  }

  /** ngx_conf_handler: find the command, check context and arity, run it. */
  private dispatch(): void {
    const name = this.args[0]!;
    const cmds = this.cycle.commands.get(name);
    if (cmds) {
      for (const cmd of cmds) {
        if (!(cmd.ctx & this.cmdType)) continue;

        if (!(cmd.args & BLOCK) && this.end !== TokenEnd.Semicolon) {
          throw this.error(`directive "${name}" is not terminated by ";"`);
        }
        if (cmd.args & BLOCK && this.end !== TokenEnd.BlockStart) {
          throw this.error(`directive "${name}" has no opening "{"`);
        }
        if (!argCountOk(cmd.args, this.args.length)) {
          throw this.error(`invalid number of arguments in "${name}" directive`);
        }
        let rv: string | undefined | void;
        try {
          rv = cmd.set(this, cmd);
        } catch (e) {
          // nesting the parser still recurses on (includes, blocks other than location): a clear error, not a stack
          if (e instanceof RangeError && e.message.includes('call stack')) throw this.error('too deep nesting of blocks or includes');
          throw e;
        }
        if (typeof rv === 'string') throw this.error(`"${name}" directive ${rv}`);
        return;
      }
      throw this.error(`"${cName(name)}" directive is not allowed here`);
    }
    const e = this.error(`unknown directive "${cName(name)}"`);
    e.hint = unimplementedHint(name);
    throw e;
  }
}

/** nginx prints a directive's name with %s: a C string, cut at its first NUL byte */
function cName(name: string): string {
  const z = name.indexOf('\0');
  return z === -1 ? name : name.slice(0, z);
}

function argCountOk(type: number, nelts: number): boolean {
  if (type & ANY) return true;
  if (type & FLAG) return nelts === 2;
  if (type & MORE1) return nelts >= 2;
  if (type & MORE2) return nelts >= 3;
  if (nelts > CONF_MAX_ARGS) return false;
  return (type & ARGUMENT_NUMBER[nelts - 1]!) !== 0;
}
