/**
 * Plain-text columns: each column as wide as its widest cell (up to its
 * maximum, longer cells cut with an ellipsis), two spaces between columns, so
 * that no two columns ever run together.
 *
 * @example table([['id', 'name'], ['1', 'Base axis substrate']], { max: [3, 30] })
 */
export function table(rows: string[][], options: { max?: (number | undefined)[]; right?: number[] } = {}): string[] {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      const cap = options.max?.[i] ?? Infinity;
      widths[i] = Math.max(widths[i] ?? 0, Math.min(length(cell), cap));
    });
  }
  return rows.map((row) =>
    row
      .map((cell, i) => {
        const fitted = fit(cell, options.max?.[i] ?? Infinity);
        if (i === row.length - 1 && !options.right?.includes(i)) return fitted;
        const pad = ' '.repeat(Math.max(0, widths[i]! - length(fitted)));
        return options.right?.includes(i) ? pad + fitted : fitted + pad;
      })
      .join('  ')
      .trimEnd(),
  );
}

/** `text` cut to `width` characters, the last one an ellipsis when cut. */
export function fit(text: string, width: number): string {
  const chars = Array.from(text);
  return chars.length <= width ? text : chars.slice(0, Math.max(0, width - 1)).join('') + '…';
}

function length(text: string): number {
  return Array.from(text).length;
}

export { plural } from '../text.js';
