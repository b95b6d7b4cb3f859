/**
 * The session settings that decide how a stored value prints as text (a
 * timestamp, an interval, a float, a bytea, money): a row's hash, a
 * table's content hash and a default printed in a definition follow them.
 */
export const VALUE_TEXT_SETTINGS = ['TimeZone', 'DateStyle', 'IntervalStyle', 'extra_float_digits', 'bytea_output', 'lc_monetary'];

/** The settings that decide how a name prints: qualified or not (a `regclass` value, a name in a definition), quoted or not. */
export const NAME_TEXT_SETTINGS = ['search_path', 'quote_all_identifiers'];

/** `current_setting('a'), current_setting('b'), …`: the settings' values, in this order, as SQL. */
export function currentSettings(names: string[]): string {
  return names.map((s) => `current_setting('${s}')`).join(', ');
}
