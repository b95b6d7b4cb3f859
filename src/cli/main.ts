import { Command, CommanderError, Option } from 'commander';
import { TiergateError, UsageError, type ExitCode } from '../errors.js';
import { scrub } from '../secrets.js';
import { exitCodeOf, type Outcome } from './exit-code.js';
import { Output } from './output.js';

/**
 * tiergate's command line: options parsed here, each command a thin module
 * of its own (src/cli/commands/), loaded lazily so `--help` stays fast (no
 * PGlite, no parser). This is the only file that sets the exit code; the
 * code is chosen by `exitCodeOf`.
 */
export async function main(argv: string[]): Promise<void> {
  let finished = false;
  // A command that never settles (a driver that neither answers nor fails)
  // would let Node exit 0 with nothing printed: a CI job would take that for
  // success. It is an error.
  process.once('beforeExit', () => {
    if (finished) return;
    process.stderr.write('tiergate: internal error: the command stopped without a result (a connection that never answered?); nothing is known to have been done\n');
    process.exitCode = 1;
  });
  ignoreClosedReader(process.stdout);
  ignoreClosedReader(process.stderr);
  const code = await run(argv);
  finished = true;
  process.exitCode = code;
}

/**
 * A reader that went away (`tiergate status | head -3`) is not an error of
 * the command: what is not read is dropped, and the command runs to its end
 * (an apply is not cut short because its log is no longer read) with its own
 * exit code. Node reports the closed pipe as an 'error' event (EPIPE); without
 * a listener that event is an uncaught exception with a stack trace.
 */
function ignoreClosedReader(stream: NodeJS.WriteStream): void {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED') return;
    throw e;
  });
}

/** Runs the CLI on `argv` and returns the exit code. */
export async function run(argv: string[]): Promise<ExitCode> {
  const wantsJson = argv.includes('--json');
  let output = new Output(wantsJson);
  let outcome: Outcome = 'ok';
  const program = new Command('tiergate')
    .description('Tiered, approval-gated PostgreSQL rollouts, rehearsed on a clone first, with evidence and a GO / NO-GO verdict.')
    .version(await version(), '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeErr: (s) => (wantsJson ? undefined : process.stderr.write(scrub(s))), writeOut: (s) => process.stdout.write(s) })
    .exitOverride();

  const planOption = () => new Option('--plan <dir>', 'plan folder (default: the bundled axis-governance plan)').env('TIERGATE_PLAN');
  const targetOption = () => new Option('--target <url>', 'target: postgres://user@host/db or pglite:DIR').env('TIERGATE_TARGET');
  const planDatabaseOption = () =>
    new Option('--plan-database <name>', "the database the plan is for here, instead of its database: (a fleet's tenant, plan_database: from_targets)").env('TIERGATE_PLAN_DATABASE');
  const jsonOption = () => new Option('--json', 'print one machine-readable result object');
  /** --wait: a rollout waits for another's lock (or a PGlite folder another process holds); a read only ever for such a folder. */
  const waitOption = (read = false) =>
    new Option(
      '--wait <duration>',
      read
        ? 'wait up to this long for a PGlite folder another process holds (30s, 5min) instead of exiting 4'
        : "wait up to this long for another rollout's lock, or a PGlite folder another process holds (30s, 5min), instead of exiting 4",
    );
  /** Runs a command module with its typed options; the output follows its --json. */
  const action =
    <O extends { json?: boolean }>(load: () => Promise<(opts: O, out: Output, args: string[]) => Promise<Outcome>>) =>
    async (...args: unknown[]): Promise<void> => {
      const cmd = args[args.length - 1] as Command;
      refuseEmptyValues(cmd);
      const opts = cmd.opts<O>();
      output = new Output(Boolean(opts.json));
      outcome = await (await load())(opts, output, cmd.args);
    };

  program
    .command('rehearse')
    .description('rehearse the whole rollout on a clone and write evidence (default: the embedded sample Directus clone)')
    .addOption(planOption())
    .addOption(planDatabaseOption())
    .option('--source <url>', 'the database to rehearse, only read: postgres://… (cloned with pg_dump onto --scratch) or pglite:DIR (copied)')
    .option('--dump <file>', 'a plain SQL dump to rehearse on (loaded into PGlite)')
    .option('--database <name>', "with --dump: the name of the database the dump was taken from (default: the plan's database:, else directus)")
    .option('--scratch <url>', 'a server where tiergate may create and drop the clone database (with a postgres --source)')
    .option('--out <dir>', 'where to write evidence.json, evidence.md and evidence.html', './tiergate-evidence')
    .option('--keep', 'keep the clone and print its URL')
    .option('--reuse-snapshot <age>', 'with a postgres --source: copy the newest snapshot of the source kept on --scratch if taken within AGE (30m, 2h, 1d) instead of dumping it again')
    .option('--fresh', 'with a postgres --source: dump the source afresh into a new snapshot even if one could be reused')
    .option('--no-snapshot', 'with a postgres --source: keep no snapshot on --scratch (restore into the clone, as a fleet does)')
    .option('--require-go', 'exit 3 when the execution verdict is NO-GO')
    .option('--scale <n>', 'scale of the embedded sample', '1')
    .addOption(jsonOption())
    .action(action(async () => (await import('./commands/rehearse.js')).rehearseCommand));
  program
    .command('apply')
    .description('apply the plan to a target, tier by tier, each in one transaction')
    .addOption(targetOption())
    .addOption(planOption())
    .addOption(planDatabaseOption())
    .option('--structure-only', 'apply only the tiers that need no approval (structure tiers, and data tiers with gated: false)')
    .option('--evidence <file>', "bind the run to a rehearsal: refuse evidence of another database, subject or plan; roll back a tier whose delta differs from the rehearsal's")
    .option('--accept-differences', 'with --evidence: commit a tier that differs from its rehearsal, recording the differences in the ledger')
    .option('--max-evidence-age <duration>', 'with --evidence: refuse a rehearsal whose copy of the source is older (default 7d)')
    .option('--dry-run', 'show what apply would do here (identity, lint, drift, lock, gate, each tier), writing nothing')
    .addOption(waitOption())
    .option('--yes', 'do not ask for confirmation')
    .addOption(jsonOption())
    .action(action(async () => (await import('./commands/apply.js')).applyCommand));
  program
    .command('rollback')
    .description("run the plan's rollback tier in one transaction and mark the tiers it reverts (says what it reverts, then asks)")
    .addOption(targetOption())
    .addOption(planOption())
    .addOption(planDatabaseOption())
    .option('--amendment', "revert only the amendment applied for the gate's current subject (the plan's rollback tier of scope subject); what earlier subjects wrote stays")
    .addOption(waitOption())
    .option('--yes', 'do not ask for confirmation')
    .addOption(jsonOption())
    .action(action(async () => (await import('./commands/rollback.js')).rollbackCommand));
  program
    .command('scan')
    .description("run the plan's scanner and list what governance misses here (new collections without owner, …); exit 1 on a critical finding")
    .addOption(targetOption())
    .addOption(planOption())
    .addOption(planDatabaseOption())
    .addOption(waitOption(true))
    .addOption(jsonOption())
    .action(action(async () => (await import('./commands/scan.js')).scanCommand));
  program
    .command('propose')
    .description('draft an amended payload from the approved one and the findings, each suggestion with its reason; --submit writes it as the proposal to approve')
    .addOption(targetOption())
    .addOption(planOption())
    .addOption(planDatabaseOption())
    .option('--out <file>', 'write the drafted payload (JSON) to this file')
    .option('--submit [file]', 'write the drafted payload (or the payload in FILE, edited) into the proposal: its subject changes, earlier approvals no longer count')
    .option('--as <email>', "with --submit: the Directus user who drafted the payload, recorded as the proposal's author (who then cannot approve it)")
    .option('--yes', 'with --submit: do not ask for confirmation')
    .addOption(jsonOption())
    .action(action(async () => (await import('./commands/propose.js')).proposeCommand));
  program
    .command('verify')
    .description('run the verify tier read-only; exit 1 listing every failing assertion')
    .addOption(targetOption())
    .addOption(planOption())
    .addOption(planDatabaseOption())
    .addOption(waitOption(true))
    .addOption(jsonOption())
    .action(action(async () => (await import('./commands/verify.js')).verifyCommand));
  program
    .command('status')
    .description("show every tier's last result (with when, who, version), the gate and every metric of a target")
    .addOption(targetOption())
    .addOption(planOption())
    .addOption(planDatabaseOption())
    .addOption(waitOption(true))
    .option('--exit-code', 'exit 1 while a structure or data tier is pending, reverted, failed or drifted, or verify, passed before, fails on the metrics read now')
    .addOption(jsonOption())
    .action(action(async () => (await import('./commands/status.js')).statusCommand));
  program
    .command('log')
    .description('the history of a target: every ledger row and every attempt, with time, user, version, file sha256 and error')
    .addOption(targetOption())
    .addOption(planOption())
    .addOption(planDatabaseOption())
    .addOption(waitOption(true))
    .addOption(jsonOption())
    .action(action(async () => (await import('./commands/log.js')).logCommand));
  program
    .command('approve')
    .description("record an approval of the plan's proposal by a Directus user; refused when it would not count")
    .addOption(targetOption())
    .addOption(planOption())
    .addOption(planDatabaseOption())
    .option('--as <email>', 'the Directus user who approves (active, admin or approver policy, not the author)')
    .option('--proposal <key>', "what is approved (default: the plan's proposal, OS-AXIS)")
    .option('--yes', 'do not ask for confirmation')
    .addOption(jsonOption())
    .action(action(async () => (await import('./commands/approve.js')).approveCommand));
  program
    .command('plan')
    .description('print the ordered tiers with kind, gate, requires and sha256')
    .addOption(planOption())
    .addOption(jsonOption())
    .action(action(async () => (await import('./commands/plan.js')).planCommand));
  program
    .command('lint')
    .description('static checks of every tier file with the real PostgreSQL parser')
    .addOption(planOption())
    .addOption(jsonOption())
    .action(action(async () => (await import('./commands/lint.js')).lintCommand));
  program
    .command('sample')
    .description('write the sample Directus database into an existing PostgreSQL database or a new PGlite directory')
    .option('--url <url>', 'an existing, empty PostgreSQL database')
    .option('--pglite <dir>', 'a new PGlite data directory (database "directus")')
    .option('--scale <n>', 'repeat the pattern N times', '1')
    .addOption(new Option('--variant <name>', 'a test variant').choices(['standard', 'divergent', 'missing-anchor', 'dangling-name', 'hostile']).default('standard'))
    .addOption(jsonOption())
    .action(action(async () => (await import('./commands/sample.js')).sampleCommand));
  program
    .command('report')
    .description('render evidence.json again as Markdown, HTML or JSON')
    .argument('<evidence>', 'an evidence.json written by tiergate rehearse')
    .addOption(new Option('--format <format>', 'output format').choices(['md', 'html', 'json']).default('md'))
    .option('--out <file>', "write to a file instead of standard output ('-': standard output)")
    .addOption(jsonOption())
    .action(
      action(async () => {
        const { reportCommand } = await import('./commands/report.js');
        return (opts: Parameters<typeof reportCommand>[1], out: Output, args: string[]) => reportCommand(args[0] ?? '', opts, out);
      }),
    );

  const fleet = program.command('fleet').description('one plan to many databases, in waves: each target rehearsed on a clone, then applied bound to its evidence (pg-boss)');
  const targetsOption = () => new Option('--targets <file>', 'the targets file (YAML: targets or inventory, waves, concurrency)');
  const controlOption = () => new Option('--control <url>', 'control database: postgres://… shared by workers on several machines, or pglite:DIR (default ./.tiergate-fleet)').env('TIERGATE_FLEET_CONTROL');
  fleet
    .command('plan')
    .description('the waves, the targets in each, and what apply would do on each (a dry run per target, nothing written)')
    .addOption(targetsOption())
    .addOption(planOption())
    .addOption(jsonOption())
    .action(action(async () => (await import('./commands/fleet.js')).fleetPlanCommand));
  fleet
    .command('apply')
    .description('rehearse each target on a clone, then apply it bound to its evidence and verify it, wave by wave; run it again to continue a rollout that stopped')
    .addOption(targetsOption())
    .addOption(planOption())
    .option('--scratch <url>', 'a server where tiergate may create and drop clone databases (or scratch: in the targets file)')
    .addOption(controlOption())
    .option('--workers <n>', 'steps this process runs at once (default: concurrency.total; 0: only coordinate, `fleet worker` runs the steps)')
    .option('--out <dir>', "where each target's evidence and the fleet report go", './tiergate-fleet-evidence')
    .option('--yes', 'do not ask for confirmation')
    .addOption(jsonOption())
    .action(action(async () => (await import('./commands/fleet.js')).fleetApplyCommand));
  fleet
    .command('status')
    .description('the per-target table and the per-wave summary of the latest rollout (or --rollout ID)')
    .addOption(controlOption())
    .option('--rollout <id>', 'a rollout other than the latest')
    .addOption(jsonOption())
    .action(action(async () => (await import('./commands/fleet.js')).fleetStatusCommand));
  fleet
    .command('report')
    .description('write the HTML fleet report (and every target\'s evidence) again')
    .addOption(controlOption())
    .option('--rollout <id>', 'a rollout other than the latest')
    .option('--out <dir>', 'where to write it', './tiergate-fleet-evidence')
    .addOption(jsonOption())
    .action(action(async () => (await import('./commands/fleet.js')).fleetReportCommand));
  fleet
    .command('worker')
    .description('run steps of every running rollout of a shared control database, until Ctrl-C (add one per machine)')
    .addOption(controlOption())
    .addOption(planOption())
    .option('--workers <n>', 'steps this worker runs at once', '2')
    .option('--out <dir>', "where this worker writes each target's evidence", './tiergate-fleet-evidence')
    .addOption(jsonOption())
    .action(action(async () => (await import('./commands/fleet.js')).fleetWorkerCommand));

  try {
    await program.parseAsync(argv);
    return exitCodeOf(outcome);
  } catch (e) {
    if (e instanceof CommanderError) {
      if (wantsJson && e.exitCode !== 0) output.result({ ok: false, error: { kind: 'usage', message: scrub(e.message.replace(/^error: /, '')) } });
      return exitCodeOf(e);
    }
    return reportError(e, output);
  }
}

/**
 * An option given an empty value (`--source "$SOURCE"` with the variable
 * unset, or its environment variable set to nothing) is a mistake, never a
 * request for the option's default: `rehearse --source ''` rehearsed the
 * embedded sample and exited 0, a PASS for a database nobody named. Every
 * option that takes a value is checked, but those `planOf` checks itself
 * with a message of their own (src/cli/common.ts: `--plan` names the
 * bundled plan).
 */
function refuseEmptyValues(cmd: Command): void {
  for (const o of cmd.options) {
    const value: unknown = cmd.getOptionValue(o.attributeName());
    if (typeof value !== 'string' || value.trim() !== '' || !o.long || CHECKED_BY_PLAN_OF.has(o.long)) continue;
    if (cmd.getOptionValueSource(o.attributeName()) === 'env' && o.envVar) throw new UsageError(`${o.envVar} is empty (it gives ${o.long}): set it to a value, or unset it`);
    throw new UsageError(`${o.long} is empty: give it a value, or do not pass ${o.long} at all`);
  }
}

/** The options whose empty value `planOf` refuses. */
const CHECKED_BY_PLAN_OF = new Set(['--plan', '--plan-database']);

/** Renders any error (with --json: as the one result object) and returns its exit code. */
export function reportError(e: unknown, output: Output): ExitCode {
  if (e instanceof TiergateError) {
    if (output.json) output.result({ ok: false, error: { kind: e.kind, message: e.message, ...('issues' in e ? { issues: e.issues } : {}) } });
    else output.error(`tiergate: ${e.message}`);
    return exitCodeOf(e);
  }
  const message = e instanceof Error ? e.message : String(e);
  if (output.json) output.result({ ok: false, error: { kind: 'internal', message } });
  else output.error(`tiergate: ${message}${process.env.TIERGATE_DEBUG && e instanceof Error ? '\n' + e.stack : ''}`);
  return exitCodeOf(e);
}

async function version(): Promise<string> {
  const { tiergateVersion } = await import('../version.js');
  return tiergateVersion();
}
