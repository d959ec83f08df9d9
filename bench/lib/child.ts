import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { BenchContext, Figure, Result } from './figure.ts';

/** Runs the figures of one bench/figures/ file (in a process of its own, so that one figure's
 *  heap, JIT and children do not weigh on another's) and writes their results as JSON. */
export interface FigureResult {
  readonly id: string;
  readonly title: string;
  readonly target?: Figure['target'];
  readonly result: Result | { readonly kind: 'failed'; readonly error: string };
  readonly notes: readonly string[];
  readonly seconds: number;
}

const [file, out, filter = ''] = process.argv.slice(2);
if (file === undefined || out === undefined) throw new Error('usage: child.ts <figures file> <out.json> [filter]');
const mod = (await import(pathToFileURL(file).href)) as { default: readonly Figure[] };
const results: FigureResult[] = [];
for (const f of mod.default) {
  if (filter !== '' && !f.id.includes(filter) && !file.includes(filter)) continue;
  const notes: string[] = [];
  const ctx: BenchContext = {
    rounds: (dflt) => Math.max(1, Math.round(dflt * Number(process.env['BENCH_SCALE'] ?? 1))),
    note: (text) => notes.push(text),
  };
  const t = Date.now();
  process.stdout.write(`  ${f.id}: ${f.title} ... `);
  let result: FigureResult['result'];
  try {
    result = await f.measure(ctx);
  } catch (err) {
    result = { kind: 'failed', error: err instanceof Error ? err.message : String(err) };
  }
  const seconds = (Date.now() - t) / 1000;
  process.stdout.write(`${result.kind} (${seconds.toFixed(1)} s)\n`);
  results.push({ id: f.id, title: f.title, ...(f.target ? { target: f.target } : {}), result, notes, seconds });
}
writeFileSync(out, JSON.stringify(results));
// Figures may leave handles (a daemon's socket) to their own cleanup; the results are written.
process.exit(0);
