import { CommanderError } from 'commander';
import { TiergateError, type ExitCode } from '../errors.js';

/**
 * What a command ended with: `ok`; `failed` (a tier, a check, verify, lint or
 * a rehearsal failed); `no-go` (gated tiers blocked by a closed gate, or
 * `--require-go` / `status --exit-code` with work left); `interrupted`.
 */
export type Outcome = 'ok' | 'failed' | 'no-go' | 'interrupted';

/**
 * The one place exit codes are chosen (README "Exit codes"): 0 success, 1 a
 * tier or check failed, 2 bad usage, plan, configuration or evidence (nothing
 * touched), 3 NO-GO, 4 another rollout holds the lock, 5 declined at the
 * confirmation prompt, 130 interrupted. An error tiergate does not know is 1.
 */
export function exitCodeOf(x: Outcome | unknown): ExitCode {
  switch (x) {
    case 'ok':
      return 0;
    case 'failed':
      return 1;
    case 'no-go':
      return 3;
    case 'interrupted':
      return 130;
  }
  if (x instanceof TiergateError) return x.exitCode;
  // commander: --help and --version exit 0; a usage error exits 2
  if (x instanceof CommanderError) return x.exitCode === 0 ? 0 : 2;
  return 1;
}
