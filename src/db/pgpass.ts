import { createRequire } from 'node:module';
import { withPassword } from '../secrets.js';

const require = createRequire(import.meta.url);

interface ConnectionParameters {
  host: string;
  port: number;
  user: string;
  database: string;
  password: string | null;
}

/**
 * `connectionString` with the password `~/.pgpass` (or `PGPASSFILE`) holds
 * for it, when neither the string nor PGPASSWORD gives one: the lookup
 * node-postgres makes itself, with the same file, fields and matching
 * (its own parameters, its `pgpass` module), made here because node-postgres
 * 8 prints a deprecation warning on stderr each time it makes it.
 */
export async function withPgpassPassword(connectionString: string): Promise<string> {
  const Parameters = require('pg/lib/connection-parameters.js') as new (config: { connectionString: string }) => ConnectionParameters;
  const params = new Parameters({ connectionString });
  if (params.password) return connectionString;
  const lookup = require('pgpass') as (params: ConnectionParameters, done: (password: string | undefined) => void) => void;
  const password = await new Promise<string | undefined>((resolve) => lookup(params, resolve));
  return password ? withPassword(connectionString, password) : connectionString;
}
