/**
 * A configuration error in nginx's shape. `file`/`line` are set when nginx
 * would append `in FILE:LINE` (errors raised while a file is being parsed);
 * errors found after parsing (unknown variables, say) carry none, as nginx's.
 */
export class ConfError extends Error {
  readonly code = 'ERR_CONF';
  readonly level: 'emerg' | 'alert' | 'crit' | 'error';
  file: string | undefined;
  line: number | undefined;
  /** raised after the file parsed (init_conf hooks): nginx has printed `syntax is ok` by then */
  afterParse = false;
  /** warnings printed before this error (nginx logs them as it goes) */
  warnings: ConfWarning[] = [];
  /** a line redis2d prints after nginx's (the module an unknown directive belongs to) */
  hint: string | undefined;

  constructor(message: string, file?: string, line?: number, level: 'emerg' | 'alert' | 'crit' | 'error' = 'emerg') {
    super(message);
    this.name = 'ConfError';
    this.file = file;
    this.line = line;
    this.level = level;
  }

  /** The text nginx prints after `[emerg] `. */
  format(): string {
    if (this.file === undefined) return this.message;
    if (this.line === -1) return `${this.message} in command line`;
    return `${this.message} in ${this.file}:${this.line}`;
  }
}

/** A non-fatal config message (nginx's `[warn]` during parsing). */
export interface ConfWarning {
  level: 'warn' | 'notice' | 'info';
  text: string;
}
