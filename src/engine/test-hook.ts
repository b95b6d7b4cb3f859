/**
 * Kill points for the reliability campaign: with TIERGATE_TEST_HOOK=step:tier
 * (e.g. `tier-script-done:2`) the process prints a marker and waits there, so
 * a test can SIGKILL it at an exact step. No effect when the variable is unset.
 */
export async function testHook(step: string, tierId: number): Promise<void> {
  const hook = process.env.TIERGATE_TEST_HOOK;
  if (!hook) return;
  if (hook !== `${step}:${tierId}` && hook !== `${step}:*`) return;
  process.stderr.write(`tiergate-test-hook ${step}:${tierId}\n`);
  await new Promise((resolve) => setTimeout(resolve, Number(process.env.TIERGATE_TEST_HOOK_WAIT_MS ?? 60_000)));
}
