/** Percentile of unsorted values (nearest rank); NaN for none. */
export function pct(values: ArrayLike<number>, p: number): number {
  if (!values.length) return NaN;
  const s = Float64Array.from(values as ArrayLike<number>).sort();
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

/** A number with `d` decimals, '-' when not finite. */
export function fmt(n: number, d = 1): string {
  if (!Number.isFinite(n)) return '-';
  return n.toFixed(d);
}

/** 12345 -> "12,345" */
export function int(n: number): string {
  if (!Number.isFinite(n)) return '-';
  return Math.round(n).toLocaleString('en-US');
}

/** A plain-text table with aligned columns. */
export function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (c ?? '').padEnd(widths[i])).join('  ').trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** A markdown table. */
export function markdown(head: string[], rows: string[][]): string {
  const esc = (c: string) => (c ?? '').replace(/\|/g, '\\|');
  return [`| ${head.map(esc).join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`)].join('\n');
}
