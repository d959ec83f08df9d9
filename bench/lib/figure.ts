import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';

/**
 * The bench's one shape. A file in bench/figures/ default-exports a list of figures; `npm run
 * bench` runs each file in a process of its own, repeats, and writes the table. Adding a figure
 * is adding (or extending) one such file.
 *
 * A figure measures either one thing repeatedly (samples) or two things alternated in one run
 * (A B A B ...), so that the load of the moment weighs on both sides of a ratio alike.
 */
export interface Figure {
  /** Stable key in the results: 'cli.list', 'inventory.cold'. */
  readonly id: string;
  /** What the table says. */
  readonly title: string;
  /** The goal, if there is one, checked against the median (samples) or the median ratio B/A
   *  (pairs): { max: 250, text: '<= 250 ms' }, { max: 1.3, text: '<= 1.3x node -e 0' }. */
  readonly target?: Target;
  readonly measure: (ctx: BenchContext) => Promise<Result>;
}

export interface Target {
  readonly max?: number;
  readonly min?: number;
  readonly text: string;
}

export interface BenchContext {
  /** How many rounds a figure should take (BENCH_ROUNDS, default per figure). */
  rounds(dflt: number): number;
  /** A note for the table's remarks column (what was set up, a caveat). */
  note(text: string): void;
}

/** `unit` is what the samples are in; `better` says which way is good. */
export type Result =
  | {
      readonly kind: 'samples';
      readonly unit: string;
      readonly better: 'lower' | 'higher';
      readonly samples: readonly number[];
    }
  | {
      readonly kind: 'pairs';
      readonly unit: string;
      readonly a: { readonly label: string; readonly samples: readonly number[] };
      readonly b: { readonly label: string; readonly samples: readonly number[] };
    }
  | { readonly kind: 'skipped'; readonly reason: string };

export const skipped = (reason: string): Result => ({ kind: 'skipped', reason });

export function samples(unit: string, xs: readonly number[], better: 'lower' | 'higher' = 'lower'): Result {
  return { kind: 'samples', unit, better, samples: xs };
}

/** Times `fn` `n` times (after `warmup` untimed runs), in ms. */
export async function repeat(n: number, fn: () => unknown, warmup = 1): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn();
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn();
    out.push(performance.now() - t);
  }
  return out;
}

/** One side of a comparison: `run` is timed, `after` (undoing what run did) is not. */
export interface Side {
  readonly label: string;
  readonly run: () => unknown;
  readonly after?: () => unknown;
}

/** A and B alternated n times (A B A B ...), each timed in ms. */
export async function alternate(n: number, a: Side, b: Side, warmup = 1): Promise<Result> {
  const ta: number[] = [];
  const tb: number[] = [];
  for (let i = 0; i < n + warmup; i++) {
    for (const [side, out] of [
      [a, ta],
      [b, tb],
    ] as const) {
      const t = performance.now();
      await side.run();
      if (i >= warmup) out.push(performance.now() - t);
      await side.after?.();
    }
  }
  return { kind: 'pairs', unit: 'ms', a: { label: a.label, samples: ta }, b: { label: b.label, samples: tb } };
}

/** Runs a command to completion; throws with its stderr when it fails (a figure of a failing
 *  command would be a figure of an error message). */
export function run(cmd: string, args: readonly string[], env?: NodeJS.ProcessEnv): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: env ?? process.env });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${String(r.status)}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] ?? Number.NaN) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
}

/** Cycles per second of `cycle`, over `windows` windows of one second each (a rate figure). */
export async function cyclesPerSecond(windows: number, cycle: () => Promise<unknown>): Promise<number[]> {
  const rates: number[] = [];
  for (let w = 0; w < windows; w++) {
    let n = 0;
    const t = performance.now();
    while (performance.now() - t < 1000) {
      await cycle();
      n++;
    }
    rates.push((n * 1000) / (performance.now() - t));
  }
  return rates;
}
