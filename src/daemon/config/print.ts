import { stringify } from 'smol-toml';
import { CONFIG_ENV, DEFAULT_CONFIG_FILE, type Resolved, type Source } from './load.ts';
import { envOf, SETTING_KEYS, SETTINGS } from './settings.ts';

/** `passthrud --help`, from the settings table. */
export function helpText(): string {
  const rows: [string, string][] = [
    [
      '--config FILE',
      `the config file (TOML; default ${DEFAULT_CONFIG_FILE} if it exists, '' for none) [${CONFIG_ENV}]`,
    ],
    ['--print-config', 'print the effective settings, each with where it came from, and exit'],
    ['-h, --help', 'this text'],
  ];
  for (const key of SETTING_KEYS) {
    const s = SETTINGS[key];
    const dflt = s.default === undefined ? '' : ` (default ${String(s.default)})`;
    rows.push([`--${key} ${s.arg}`, `${s.help}${dflt} [${envOf(key)}]`]);
  }
  const width = Math.max(...rows.map(([l]) => l.length)) + 2;
  return [
    'Usage: passthrud [options]',
    '',
    'passthru daemon: owns the host devices and the QEMU guests that hold them.',
    'Each setting is a flag, an environment variable [in brackets] and a key of the config file;',
    'a flag wins over the environment, which wins over the file, which wins over the default.',
    '',
    ...rows.map(([l, r]) => `  ${l.padEnd(width)}${r}`),
    '',
  ].join('\n');
}

/** `passthrud --print-config`: a config file of the effective settings (TOML), each line saying
 *  where its value came from. Unset settings are commented out. */
export function printConfig(r: Resolved): string {
  const lines = [
    `# passthrud's effective settings: flag > environment > ${r.file ?? 'config file (none read)'} > default`,
  ];
  const entries = SETTING_KEYS.map((key) => {
    const value = r.config[key];
    const text = value === undefined ? `# ${key} =` : stringify({ [key]: value }).trim();
    return [text, value === undefined ? 'unset' : sourceText(r.sources[key])] as const;
  });
  const width = Math.max(...entries.map(([t]) => t.length)) + 2;
  for (const [t, from] of entries) lines.push(`${t.padEnd(width)}# ${from}`);
  return `${lines.join('\n')}\n`;
}

function sourceText(s: Source): string {
  switch (s.from) {
    case 'flag':
      return 'flag';
    case 'env':
      return `env ${s.name}`;
    case 'file':
      return `${s.file} line ${s.line}`;
    case 'default':
      return 'default';
  }
}
