import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { registerSecret } from '../secrets.js';
import { renderJson } from './evidence-json.js';
import type { Evidence } from './types.js';

/** The environment variable holding the key evidence is signed with (never a command-line flag: it would show in `ps`). */
export const EVIDENCE_KEY_ENV = 'TIERGATE_EVIDENCE_KEY';

/** The signing key from the environment, registered as a secret (never printed); null when unset. */
export function evidenceKey(): string | null {
  const key = process.env[EVIDENCE_KEY_ENV];
  if (!key) return null;
  registerSecret(key);
  return key;
}

/** A short public id of a key: which key signed, without telling the key. */
export function keyId(key: string): string {
  return createHash('sha256').update(`tiergate-evidence-key:${key}`).digest('hex').slice(0, 16);
}

/** The bytes a signature covers: the evidence as evidence.json writes it, without its signature. */
function signedText(evidence: Evidence): string {
  const { signature: _, ...rest } = evidence;
  return renderJson(rest as Evidence);
}

/**
 * The evidence with an HMAC-SHA256 signature under `key`: an edit of any
 * field (a verdict, a delta, a file hash) no longer verifies.
 *
 * @example const signed = signEvidence(evidence, process.env.TIERGATE_EVIDENCE_KEY!)
 */
export function signEvidence(evidence: Evidence, key: string): Evidence {
  const value = createHmac('sha256', key).update(signedText(evidence)).digest('hex');
  return { ...evidence, signature: { algorithm: 'hmac-sha256', keyId: keyId(key), value } };
}

/** Whether the evidence's signature was made with `key` over exactly this evidence. */
export function verifyEvidence(evidence: Evidence, key: string): 'valid' | 'unsigned' | 'other key' | 'invalid' {
  const sig = evidence.signature;
  if (!sig) return 'unsigned';
  if (sig.keyId !== keyId(key)) return 'other key';
  const expected = Buffer.from(createHmac('sha256', key).update(signedText(evidence)).digest('hex'), 'hex');
  const given = Buffer.from(/^[0-9a-f]{64}$/.test(sig.value) ? sig.value : '', 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected) ? 'valid' : 'invalid';
}
