/**
 * Escaping of database-derived text for Markdown (CommonMark + GFM tables),
 * so a name or message can neither break a table nor inject markup. Control
 * characters and Unicode's bidirectional overrides and isolates (U+202A–E,
 * U+2066–9, which reverse how a line reads) are dropped everywhere, code
 * blocks included.
 */

const CONTROL_CHARS = '[\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f\\u202a-\\u202e\\u2066-\\u2069]';
const CONTROL = new RegExp(CONTROL_CHARS, 'g');
const HAS_UNSAFE_FOR_CODE = new RegExp(`[\`|\\r\\n\\u2028\\u2029]|${CONTROL_CHARS}`);
const LINE_BREAK = /\r\n|[\r\n\u2028\u2029]/g;

/**
 * Inline text: one line, Markdown punctuation backslash-escaped, `<` `>` `&`
 * escaped so no HTML or entity gets through. Intraword `_` is left alone
 * (GFM never emphasises it), so `owner_gap` reads as it is.
 *
 * @example mdText('a | b <i>') // 'a \\| b \\<i\\>'
 */
export function mdText(text: string): string {
  return text
    .replace(LINE_BREAK, ' ')
    .replace(/\t/g, ' ')
    .replace(CONTROL, '')
    .replace(/[\\`*[\]<>|~!#]/g, (c) => `\\${c}`)
    .replace(/&/g, '&amp;')
    .replace(/_/g, (c, i: number, s: string) => (/[\p{L}\p{N}]/u.test(s[i - 1] ?? '') && /[\p{L}\p{N}]/u.test(s[i + 1] ?? '') ? c : `\\${c}`));
}

/**
 * A name as a code span (`` `axis.ownership` ``), safe inside a table cell.
 * A name that a code span cannot hold safely (a backtick, a pipe, a line
 * break) is shown as escaped text instead.
 *
 * @example mdCode('owner_gap') // '`owner_gap`'
 */
export function mdCode(text: string): string {
  if (text === '' || HAS_UNSAFE_FOR_CODE.test(text) || text.trim() !== text) {
    return mdText(text);
  }
  return '`' + text + '`';
}

/**
 * A fenced code block, its fence longer than any backtick run inside, each
 * line indented by `indent` (to sit inside a list item).
 *
 * @example mdBlock('RAISE EXCEPTION …', 'sql', '  ')
 */
export function mdBlock(text: string, lang = '', indent = ''): string {
  const body = text.replace(/\r\n?/g, '\n').replace(CONTROL, '');
  const longestRun = Math.max(0, ...Array.from(body.matchAll(/`+/g), (m) => m[0].length));
  const fence = '`'.repeat(Math.max(3, longestRun + 1));
  return [fence + lang, ...body.split('\n'), fence].map((l) => indent + l).join('\n');
}
