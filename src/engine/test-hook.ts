/**
 * Kill points for the reliability campaign: with TIERGATE_TEST_HOOK=step:tier
 * (e.g. `tier-script-done:2`) the process prints a marker and waits there
 * (TIERGATE_TEST_HOOK_WAIT_MS, 60 s by default, or until it receives
 * SIGUSR2), so a test can SIGKILL it at an exact step or act on the database
 * meanwhile. No effect when the variable is unset.
 */
export async function testHook(step: string, tierId: number): Promise<void> {
  const hook = process.env.TIERGATE_TEST_HOOK;
  if (!hook) return;
  if (hook !== `${step}:${tierId}` && hook !== `${step}:*`) return;
  await new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      process.off('SIGUSR2', done);
      resolve();
    };
    const timer = setTimeout(done, Number(process.env.TIERGATE_TEST_HOOK_WAIT_MS ?? 60_000));
    // listening before the marker is out: a SIGUSR2 sent on seeing it must never meet the default action (exit)
    process.on('SIGUSR2', done);
    process.stderr.write(`tiergate-test-hook ${step}:${tierId}\n`);
  });
}
