import { UsageError, type ExitCode } from '../errors.js';
import type { Output } from './output.js';

/** `tiergate rehearse`: see src/rehearsal/. */
export async function rehearseCommand(_opts: Record<string, unknown>, _out: Output): Promise<ExitCode> {
  throw new UsageError('rehearse is not built yet in this version');
}
