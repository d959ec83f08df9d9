import { asPassthruError } from '../conf/error.ts';

/** The one place where an error becomes what the user reads: one line, a hint, no stack. */
export function renderError(err: unknown): string {
  const e = asPassthruError(err);
  const lines = [`error: ${e.message}`];
  if (e.hint) lines.push(`hint: ${e.hint}`);
  if (process.env['PASSTHRU_DEBUG'] === '1' && e.code === 'INTERNAL' && e.cause instanceof Error) {
    lines.push(String(e.cause.stack));
  }
  return `${lines.join('\n')}\n`;
}

/** A plain text table like virsh's: a header, a rule, aligned columns. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('   ')
      .trimEnd();
  return `${[line(headers), '-'.repeat(line(headers).length + 2), ...rows.map(line)].join('\n')}\n`;
}
