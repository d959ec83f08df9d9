import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parse as parseToml, TomlError } from 'smol-toml';
import { PassthruError } from '../../conf/error.ts';
import { type DaemonConfig, derivedDefault, envOf, SETTING_KEYS, SETTINGS, type SettingKey } from './settings.ts';

export const DEFAULT_CONFIG_FILE = '/etc/passthru/passthrud.conf';
export const CONFIG_ENV = 'PASSTHRU_CONFIG';

/** Where a setting's value came from, for --print-config. */
export type Source =
  | { readonly from: 'flag' }
  | { readonly from: 'env'; readonly name: string }
  | { readonly from: 'file'; readonly file: string; readonly line: number }
  | { readonly from: 'default' };

export interface Resolved {
  readonly config: DaemonConfig;
  readonly sources: Readonly<Record<SettingKey, Source>>;
  /** The config file read, or undefined (none named and none at the default path). */
  readonly file: string | undefined;
  readonly printConfig: boolean;
  readonly help: boolean;
}

/**
 * The daemon's settings from its command line, its environment and its config file
 * (`--config FILE`, else $PASSTHRU_CONFIG, else /etc/passthru/passthrud.conf if it exists; ''
 * for none). Every bad input is one PassthruError naming the key and where it was given.
 */
export function resolveConfig(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  read: (path: string) => string = (p) => readFileSync(p, 'utf8'),
): Resolved {
  const flags = parseFlags(argv);
  const named = stringFlag(flags, 'config') ?? env[CONFIG_ENV];
  const file = named ?? DEFAULT_CONFIG_FILE;
  const inFileOrNone = named === '' ? undefined : readConfigFile(file, named !== undefined, read);
  const fileValues = inFileOrNone ?? new Map<string, FileValue>();

  const values: Record<string, unknown> = {};
  const sources: Record<string, Source> = {};
  for (const key of SETTING_KEYS) {
    const s = SETTINGS[key];
    const flag = stringFlag(flags, key);
    const envName = envOf(key);
    const envValue = env[envName];
    const inFile = fileValues.get(key);
    if (flag !== undefined) {
      values[key] = checked(key, s.fromText(flag), flag, `--${key}`);
      sources[key] = { from: 'flag' };
    } else if (envValue !== undefined) {
      values[key] = checked(key, s.fromText(envValue), envValue, envName);
      sources[key] = { from: 'env', name: envName };
    } else if (inFile !== undefined) {
      values[key] = checked(key, s.fromToml(inFile.value), inFile.value, `${file} line ${inFile.line}: ${key}`, true);
      sources[key] = { from: 'file', file, line: inFile.line };
    } else {
      values[key] = s.default;
      sources[key] = { from: 'default' };
    }
  }
  for (const key of SETTING_KEYS) values[key] ??= derivedDefault(key, String(values['socket']));
  return {
    config: values as DaemonConfig,
    sources: sources as Resolved['sources'],
    file: inFileOrNone === undefined ? undefined : file,
    printConfig: flags['print-config'] === true,
    help: flags['help'] === true,
  };
}

type Flags = Record<string, string | boolean | undefined>;

function parseFlags(argv: readonly string[]): Flags {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {
    config: { type: 'string' },
    'print-config': { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  };
  for (const key of SETTING_KEYS) options[key] = { type: 'string' };
  try {
    return parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    // parseArgs's messages name the option ("Unknown option '--sockt'"); keep them, drop its advice.
    const message = err instanceof Error ? (err.message.split('. ')[0] ?? err.message) : String(err);
    throw new PassthruError('INVALID_ARG', message.replace(/\.$/, ''), { hint: 'passthrud --help lists them' });
  }
}

function stringFlag(flags: Flags, key: string): string | undefined {
  const v = flags[key];
  return typeof v === 'string' ? v : undefined;
}

/** `subject` names the key where it was given: `--socket`, `PASSTHRU_SOCKET`, `FILE line 3: socket`. */
function checked<T>(key: SettingKey, value: T | undefined, given: unknown, subject: string, fromFile = false): T {
  if (value !== undefined) return value;
  // Text from a flag or the environment in quotes; a file's value as TOML writes it ("2" is a string).
  const shown = fromFile
    ? typeof given === 'object' && given !== null
      ? Array.isArray(given)
        ? 'a list'
        : 'a table'
      : JSON.stringify(given)
    : `'${String(given)}'`;
  throw new PassthruError('INVALID_ARG', `${subject} must be ${SETTINGS[key].expected}, not ${shown}`);
}

interface FileValue {
  readonly value: unknown;
  readonly line: number;
}

/** The file's keys with their lines. A missing file is an error only when it was named. */
function readConfigFile(
  file: string,
  named: boolean,
  read: (path: string) => string,
): Map<string, FileValue> | undefined {
  let source: string;
  try {
    source = read(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (!named && code === 'ENOENT') return undefined;
    throw new PassthruError('INVALID_ARG', `cannot read the config file ${file}: ${code ?? String(err)}`);
  }
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(source);
  } catch (err) {
    if (!(err instanceof TomlError)) throw err;
    const what = err.message.split('\n')[0]?.replace(/^Invalid TOML document: /, '') ?? 'not TOML';
    throw new PassthruError('INVALID_ARG', `${file} line ${err.line}: ${what}`, {
      line: err.line,
      column: err.column,
    });
  }
  const lines = keyLines(source);
  const out = new Map<string, FileValue>();
  for (const [key, value] of Object.entries(doc)) {
    const line = lines.get(key) ?? 0;
    if (!Object.hasOwn(SETTINGS, key)) {
      throw new PassthruError('INVALID_ARG', `${file} line ${line}: unknown key '${key}'`, {
        line,
        hint: `the keys are: ${SETTING_KEYS.join(', ')}`,
      });
    }
    out.set(key, { value, line });
  }
  return out;
}

/**
 * The line where each top-level key (or table header) is first written. smol-toml gives values
 * without positions, and TOML has every top-level key start a line, so a scan finds them; the
 * inside of multi-line strings is skipped.
 */
export function keyLines(source: string): Map<string, number> {
  const lines = new Map<string, number>();
  let inString: '"""' | "'''" | undefined;
  source.split('\n').forEach((text, i) => {
    if (inString) {
      if (text.split(inString).length % 2 === 0) inString = undefined;
      return;
    }
    const m = /^\s*\[{0,2}\s*("((?:[^"\\]|\\.)*)"|'([^']*)'|([A-Za-z0-9_-]+))/.exec(text);
    const key = m?.[2] ?? m?.[3] ?? m?.[4];
    if (key !== undefined && !lines.has(key)) lines.set(key, i + 1);
    for (const q of ['"""', "'''"] as const) if (text.split(q).length % 2 === 0) inString = q;
  });
  return lines;
}
