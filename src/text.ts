/**
 * Text from outside tiergate (database values, plan names, error messages)
 * made safe to print or render: C0 and C1 control characters other than line
 * breaks and tabs, and Unicode's bidirectional overrides and isolates (which
 * reverse how a line reads: U+202A–U+202E, U+2066–U+2069), are removed.
 *
 * @example safeText('name\u001b]0;owned\u0007 \u202Egnp.exe') // 'name]0;owned gnp.exe'
 */
export function safeText(text: string): string {
  return text.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, '');
}

/**
 * Text from outside tiergate made safe for one line of output: line breaks
 * and other separators become spaces (a name with a newline cannot forge a
 * line of its own in a list or a CI log), then `safeText`.
 *
 * @example singleLine('nl\nname') // 'nl name'
 */
export function singleLine(text: string): string {
  return safeText(text.replace(/\r\n|[\r\n\t\v\f\u2028\u2029]/g, ' '));
}

/** `1 anchor`, `3 anchors` */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
