/**
 * Throwaway PostgreSQL clusters for the reliability campaign
 * (`scripts/pg-cluster.ts`), owned by the test that starts them, so that a
 * test may restart one (`pg_ctl restart -m immediate`) without disturbing
 * the others.
 *
 * Password roles: `local all all trust` for everyone except the roles named
 * in `passwordRoles`, which must authenticate with scram-sha-256 (the
 * secrets canary needs a password that really travels).
 */
import { startCluster as startPgCluster, type Cluster } from '../../scripts/pg-cluster.js';

export type { Cluster } from '../../scripts/pg-cluster.js';

export interface ClusterOptions {
  /** roles that must log in with a password (scram-sha-256); everyone else is trusted */
  passwordRoles?: string[];
  /** start from a copy of this (stopped) data directory instead of initdb */
  copyDataFrom?: string;
  /** a label for the temporary directory */
  label?: string;
  /**
   * keep synchronous_commit on: a commit the client saw survives
   * `restartImmediate` (fsync stays off: the OS does not crash here)
   */
  durable?: boolean;
}

/**
 * Fast and disposable (no fsync), with commit timestamps: the gate race orders
 * a revocation's commit against a tier's commit with pg_xact_commit_timestamp.
 */
const SETTINGS = {
  fsync: 'off',
  full_page_writes: 'off',
  max_connections: '200',
  track_commit_timestamp: 'on',
};

/** @example const c = startCluster({ passwordRoles: ['canary'] }); try { … c.url('postgres') … } finally { c.destroy(); } */
export function startCluster(options: ClusterOptions = {}): Cluster {
  return startPgCluster({
    label: `rel-${options.label ?? 'pg'}`,
    settings: { ...SETTINGS, synchronous_commit: options.durable ? 'on' : 'off' },
    passwordRoles: options.passwordRoles ?? [],
    copyDataFrom: options.copyDataFrom,
  });
}
