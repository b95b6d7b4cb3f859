/**
 * The campaign's size: TIERGATE_RELIABILITY_SIZE=full (the README's figures,
 * ≥ 200 kill trials) or ci (the default: the same checks, fewer trials, a few
 * minutes on two cores).
 */
export type CampaignSize = 'ci' | 'full';

export function campaignSize(): CampaignSize {
  const v = (process.env.TIERGATE_RELIABILITY_SIZE ?? 'ci').trim().toLowerCase();
  if (v !== 'ci' && v !== 'full') throw new Error(`TIERGATE_RELIABILITY_SIZE must be 'ci' or 'full' (got '${v}')`);
  return v;
}

/** The trial count of a check at this size. */
export function trials(ci: number, full: number): number {
  return campaignSize() === 'full' ? full : ci;
}
