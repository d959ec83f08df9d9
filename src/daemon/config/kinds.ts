/**
 * The kinds of value a daemon setting takes. Each knows how to read itself from text (a flag or
 * an environment variable) and from a TOML value (the config file), and says in words what it
 * expects, for the error that names the key.
 */
export interface Setting<T> {
  /** Placeholder in --help: `--state-dir DIR`. */
  readonly arg: string;
  readonly help: string;
  /** What a good value looks like, for errors: "a whole number from 0 to 16". */
  readonly expected: string;
  /** undefined: unset unless given (or derived from the other settings, see `derive`). */
  readonly default: T | undefined;
  /** The environment variable when it is not `PASSTHRU_<KEY>` (kept from before the table). */
  readonly env?: string;
  /** The value, or undefined when `text` is not one. */
  fromText(text: string): T | undefined;
  fromToml(value: unknown): T | undefined;
}

export type ValueOf<S> = S extends Setting<infer T> ? T : never;

interface Described {
  readonly arg: string;
  readonly help: string;
  readonly env?: string;
}

/** Text as it is; `check` narrows which texts are good, `expected` says so. */
export function text(
  d: Described & { default?: string; expected?: string; check?: (s: string) => boolean },
): Setting<string> {
  const ok = (s: string): string | undefined => (d.check === undefined || d.check(s) ? s : undefined);
  return {
    arg: d.arg,
    help: d.help,
    expected: d.expected ?? 'a string',
    default: d.default,
    ...(d.env === undefined ? {} : { env: d.env }),
    fromText: ok,
    fromToml: (v) => (typeof v === 'string' ? ok(v) : undefined),
  };
}

export function integer(d: Described & { default?: number; min: number; max: number }): Setting<number> {
  const ok = (n: number): number | undefined => (Number.isInteger(n) && n >= d.min && n <= d.max ? n : undefined);
  return {
    arg: d.arg,
    help: d.help,
    expected: `a whole number from ${d.min} to ${d.max}`,
    default: d.default,
    ...(d.env === undefined ? {} : { env: d.env }),
    fromText: (s) => (/^\d+$/.test(s) ? ok(Number(s)) : undefined),
    fromToml: (v) => (typeof v === 'number' ? ok(v) : undefined),
  };
}

export function oneOf<const V extends string>(d: Described & { default: V; values: readonly V[] }): Setting<V> {
  const ok = (s: unknown): V | undefined => d.values.find((v) => v === s);
  return {
    arg: d.arg,
    help: d.help,
    expected: `one of ${d.values.join(', ')}`,
    default: d.default,
    ...(d.env === undefined ? {} : { env: d.env }),
    fromText: ok,
    fromToml: ok,
  };
}
