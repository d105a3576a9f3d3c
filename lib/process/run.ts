import type { CliOptions } from '../cli.js';
import { loadOrReport } from '../cli.js';

/** Start serving. The request side and the process model come with their issues. */
export async function run(opts: CliOptions, prefix: string, confFile: string): Promise<number> {
  const cycle = loadOrReport(opts, confFile, prefix);
  if (!cycle) return 1;
  process.stderr.write('redis2d: [emerg] serving is not implemented yet\n');
  return 1;
}
