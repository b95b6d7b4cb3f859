/** The evidence contract's version (`evidence.json`'s `schemaVersion`): bumped on incompatible change. */
export const EVIDENCE_SCHEMA_VERSION = 2;
