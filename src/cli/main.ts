import { Command, CommanderError, Option } from 'commander';
import { TiergateError, type ExitCode } from '../errors.js';
import { scrub } from '../secrets.js';
import { Output } from './output.js';

/**
 * tiergate's command line. Commands are loaded lazily so `--help` stays fast
 * (no PGlite, no parser). This is the only file that exits.
 */
export async function main(argv: string[]): Promise<void> {
  const code = await run(argv);
  process.exitCode = code;
}

export async function run(argv: string[]): Promise<ExitCode> {
  let output = new Output(argv.includes('--json'));
  let exitCode: ExitCode = 0;
  const program = new Command('tiergate')
    .description('Tiered, approval-gated PostgreSQL rollouts, rehearsed on a clone first, with evidence and a GO / NO-GO verdict.')
    .version(await version(), '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeErr: (s) => process.stderr.write(scrub(s)), writeOut: (s) => process.stdout.write(s) })
    .exitOverride();

  const planOption = () => new Option('--plan <dir>', 'plan folder (default: the bundled axis-governance plan)').env('TIERGATE_PLAN');
  const targetOption = () => new Option('--target <url>', 'target: postgres://user@host/db or pglite:DIR').env('TIERGATE_TARGET');
  const jsonOption = () => new Option('--json', 'print one machine-readable result object');
  const action =
    (name: string) =>
    async (...args: unknown[]): Promise<void> => {
      const cmd = args[args.length - 1] as Command;
      const opts = cmd.opts();
      output = new Output(Boolean(opts.json));
      const commands = await import('./commands.js');
      exitCode = await commands.dispatch(name, cmd.args, opts, output);
    };

  program
    .command('rehearse')
    .description('rehearse the whole rollout on a clone and write evidence (default: the embedded sample Directus clone)')
    .addOption(planOption())
    .option('--source <url>', 'the database to rehearse (read only; cloned with pg_dump)')
    .option('--dump <file>', 'a plain SQL dump to rehearse on (loaded into PGlite)')
    .option('--scratch <url>', 'a server where tiergate may create and drop the clone database (with --source)')
    .option('--out <dir>', 'where to write evidence.json, evidence.md and evidence.html', './tiergate-evidence')
    .option('--keep', 'keep the clone and print its URL')
    .option('--require-go', 'exit 3 when the execution verdict is NO-GO')
    .option('--scale <n>', 'scale of the embedded sample', '1')
    .addOption(jsonOption())
    .action(action('rehearse'));
  program
    .command('apply')
    .description('apply the plan to a target, tier by tier, each in one transaction')
    .addOption(targetOption())
    .addOption(planOption())
    .option('--structure-only', 'apply structure tiers only')
    .option('--evidence <file>', 'refuse unless this rehearsal evidence is a PASS for the same plan files; report delta differences')
    .option('--yes', 'do not ask for confirmation')
    .addOption(jsonOption())
    .action(action('apply'));
  program
    .command('rollback')
    .description("run the plan's rollback tier in one transaction and mark the tiers it reverts")
    .addOption(targetOption())
    .addOption(planOption())
    .option('--yes', 'do not ask for confirmation')
    .addOption(jsonOption())
    .action(action('rollback'));
  program
    .command('verify')
    .description('run the verify tier read-only; exit 1 listing every failing assertion')
    .addOption(targetOption())
    .addOption(planOption())
    .addOption(jsonOption())
    .action(action('verify'));
  program
    .command('status')
    .description('show the ledger, the gate value and every metric of a target')
    .addOption(targetOption())
    .addOption(planOption())
    .addOption(jsonOption())
    .action(action('status'));
  program
    .command('plan')
    .description('print the ordered tiers with kind, gate, requires and sha256')
    .addOption(planOption())
    .addOption(jsonOption())
    .action(action('plan'));
  program
    .command('lint')
    .description('static checks of every tier file with the real PostgreSQL parser')
    .addOption(planOption())
    .addOption(jsonOption())
    .action(action('lint'));
  program
    .command('sample')
    .description('write the sample Directus database into an existing PostgreSQL database or a PGlite directory')
    .option('--url <url>', 'an existing, empty PostgreSQL database')
    .option('--pglite <dir>', 'a PGlite data directory (database "directus")')
    .option('--scale <n>', 'repeat the pattern N times', '1')
    .addOption(new Option('--variant <name>', 'a test variant').choices(['standard', 'divergent', 'missing-anchor', 'dangling-name', 'hostile']).default('standard'))
    .addOption(jsonOption())
    .action(action('sample'));
  program
    .command('report')
    .description('render evidence.json again as Markdown or HTML')
    .argument('<evidence>', 'an evidence.json written by tiergate rehearse')
    .addOption(new Option('--format <format>', 'output format').choices(['md', 'html', 'json']).default('md'))
    .option('--out <file>', 'write to a file instead of standard output')
    .action(action('report'));

  try {
    await program.parseAsync(argv);
    return exitCode;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version exit 0; a usage error exits 2
      return e.exitCode === 0 ? 0 : 2;
    }
    return reportError(e, output);
  }
}

/** Renders any error and chooses its exit code: tiergate errors carry one; anything else is 1. */
export function reportError(e: unknown, output: Output): ExitCode {
  if (e instanceof TiergateError) {
    if (output.json) output.result({ ok: false, error: { kind: e.kind, message: e.message, ...('issues' in e ? { issues: e.issues } : {}) } });
    else output.error(`tiergate: ${e.message}`);
    return e.exitCode;
  }
  const message = e instanceof Error ? e.message : String(e);
  if (output.json) output.result({ ok: false, error: { kind: 'internal', message } });
  else output.error(`tiergate: ${message}${process.env.TIERGATE_DEBUG && e instanceof Error ? '\n' + e.stack : ''}`);
  return 1;
}

async function version(): Promise<string> {
  const { tiergateVersion } = await import('../version.js');
  return tiergateVersion();
}
