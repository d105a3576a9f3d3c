/*
 * What the command line asked for (nginx's -?hvVtTq, -s, -p, -e, -c, -g),
 * as cli.ts parsed it; the process layer runs with it.
 */

export interface CliOptions {
  help?: boolean;
  version?: boolean;
  versionFull?: boolean;
  test?: boolean;
  dump?: boolean;
  quiet?: boolean;
  signal?: string;
  prefix?: string;
  errorLog?: string;
  conf?: string;
  globals?: string;
}
