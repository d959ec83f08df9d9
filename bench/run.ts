import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FigureResult } from './lib/child.ts';
import { median } from './lib/figure.ts';

/**
 * `npm run bench [-- FILTER]`: every figure of bench/figures/*.ts (each file in its own
 * process), then bench/results/<date>.json and .md. FILTER keeps the files or figure ids that
 * contain it. BENCH_SCALE=0.5 halves every figure's rounds (a quick look), 2 doubles them.
 * Figures, not pass/fail: the exit status is 0 unless a figure failed to run.
 */
const filter = process.argv[2] ?? '';
const here = import.meta.dirname;
const figuresDir = join(here, 'figures');
const files = readdirSync(figuresDir)
  .filter((f) => f.endsWith('.ts'))
  .sort();
const tmp = mkdtempSync(join(tmpdir(), 'passthru-bench-'));
const started = new Date();
const loadBefore = loadavg();
const all: (FigureResult & { file: string })[] = [];
try {
  for (const f of files) {
    const out = join(tmp, `${f}.json`);
    process.stdout.write(`bench/figures/${f}\n`);
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', join(here, 'lib', 'child.ts'), join(figuresDir, f), out, filter],
      { stdio: 'inherit' },
    );
    let results: FigureResult[] = [];
    try {
      results = JSON.parse(readFileSync(out, 'utf8')) as FigureResult[];
    } catch {
      results = [
        {
          id: f.replace(/\.ts$/, ''),
          title: `bench/figures/${f}`,
          result: { kind: 'failed', error: `the bench process exited ${String(r.status ?? r.signal)}` },
          notes: [],
          seconds: 0,
        },
      ];
    }
    all.push(...results.map((x) => ({ ...x, file: f })));
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}

const env = {
  date: started.toISOString(),
  node: process.version,
  cpus: `${cpus().length} x ${cpus()[0]?.model ?? '?'}`,
  loadavgBefore: loadBefore.map((x) => Number(x.toFixed(2))),
  loadavgAfter: loadavg().map((x) => Number(x.toFixed(2))),
  commit: spawnSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim(),
  filter,
};
const rows = all.map(summarise);
const resultsDir = join(here, 'results');
mkdirSync(resultsDir, { recursive: true });
const stamp = started.toISOString().slice(0, 16).replace(/:/g, '');
const md = markdown(env, rows);
writeFileSync(join(resultsDir, `${stamp}.json`), `${JSON.stringify({ env, figures: rows }, null, 2)}\n`);
writeFileSync(join(resultsDir, `${stamp}.md`), md);
process.stdout.write(`\n${md}\nwritten: bench/results/${stamp}.json, bench/results/${stamp}.md\n`);
process.exit(rows.some((r) => r.status === 'failed') ? 1 : 0);

interface Row {
  readonly id: string;
  readonly title: string;
  readonly status: 'measured' | 'skipped' | 'failed';
  readonly unit?: string;
  readonly n?: number;
  readonly median?: number;
  readonly min?: number;
  readonly max?: number;
  /** For a comparison: each side's median, and the ratio B/A of each alternated pair. */
  readonly a?: { label: string; median: number; min: number; max: number };
  readonly b?: { label: string; median: number; min: number; max: number };
  readonly target?: string;
  readonly met?: boolean;
  readonly remark?: string;
  readonly samples?: readonly number[] | { a: readonly number[]; b: readonly number[] };
}

function stats(xs: readonly number[]): { median: number; min: number; max: number } {
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) };
}

function summarise(f: FigureResult): Row {
  const base = { id: f.id, title: f.title, ...(f.target ? { target: f.target.text } : {}) };
  const r = f.result;
  const notes = f.notes.join('; ');
  if (r.kind === 'skipped') return { ...base, status: 'skipped', remark: [r.reason, notes].filter(Boolean).join('; ') };
  if (r.kind === 'failed') return { ...base, status: 'failed', remark: r.error };
  const check = (v: number): boolean | undefined =>
    f.target === undefined
      ? undefined
      : (f.target.max === undefined || v <= f.target.max) && (f.target.min === undefined || v >= f.target.min);
  if (r.kind === 'samples') {
    const s = stats(r.samples);
    const met = check(s.median);
    return {
      ...base,
      status: 'measured',
      unit: r.unit,
      n: r.samples.length,
      ...s,
      ...(met === undefined ? {} : { met }),
      ...(notes ? { remark: notes } : {}),
      samples: r.samples,
    };
  }
  const ratios = r.b.samples.map((b, i) => b / (r.a.samples[i] ?? Number.NaN));
  const s = stats(ratios);
  const met = check(s.median);
  return {
    ...base,
    status: 'measured',
    unit: 'x',
    n: ratios.length,
    ...s,
    a: { label: r.a.label, ...stats(r.a.samples) },
    b: { label: r.b.label, ...stats(r.b.samples) },
    ...(met === undefined ? {} : { met }),
    ...(notes ? { remark: notes } : {}),
    samples: { a: r.a.samples, b: r.b.samples },
  };
}

function num(v: number): string {
  const a = Math.abs(v);
  return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : a >= 1 ? v.toFixed(2) : v.toFixed(3);
}

function markdown(e: typeof env, rows: readonly Row[]): string {
  const lines = [
    `Run ${e.date} at ${e.commit}, node ${e.node}, ${e.cpus}, load average ${e.loadavgBefore.join(' ')} before and ${e.loadavgAfter.join(' ')} after.`,
    '',
    '| figure | median | min - max | n | target | met | remarks |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const met = r.met === undefined ? '' : r.met ? 'yes' : 'no';
    if (r.status !== 'measured') {
      lines.push(`| ${r.title} | ${r.status} | | | ${r.target ?? ''} | | ${r.remark ?? ''} |`);
      continue;
    }
    const unit = r.unit === 'x' ? 'x' : ` ${r.unit ?? ''}`;
    const sides =
      r.a && r.b
        ? `${r.b.label} ${num(r.b.median)} ms vs ${r.a.label} ${num(r.a.median)} ms (medians)${r.remark ? `; ${r.remark}` : ''}`
        : (r.remark ?? '');
    lines.push(
      `| ${r.title} | ${num(r.median ?? Number.NaN)}${unit} | ${num(r.min ?? Number.NaN)} - ${num(r.max ?? Number.NaN)} | ${r.n ?? ''} | ${r.target ?? ''} | ${met} | ${sides} |`,
    );
  }
  return `${lines.join('\n')}\n`;
}
