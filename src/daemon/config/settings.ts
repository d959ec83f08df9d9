import { DEFAULT_SOCKET, DEFAULT_STATE_DIR, readOnlySocketOf } from '../../protocol/wire.ts';
import { DEFAULT_AUDIT_MAX_BYTES, SYSTEM_AUDIT_LOG } from '../audit-log.ts';
import { parseListen } from '../tls.ts';
import { integer, oneOf, text, type ValueOf } from './kinds.ts';

/**
 * Every setting of passthrud, once. The flags (`--KEY`), the environment (`PASSTHRU_KEY`), the
 * config file's keys (`KEY = value`), --help and --print-config are all made from this table,
 * so they cannot drift apart. Precedence: flag > environment > file > default.
 */
export const SETTINGS = {
  host: text({
    arg: 'SPEC',
    help: "host backend: 'linux' (the real /sys, rtnetlink, /dev/vfio) or 'sim:DIR'",
    default: 'linux',
    expected: "'linux' or 'sim:DIR'",
    check: (s) => s === 'linux' || /^sim:./.test(s),
  }),
  'state-dir': text({
    arg: 'DIR',
    help: 'where definitions, status and the device journal live',
    default: DEFAULT_STATE_DIR,
    expected: 'a directory',
    check: nonEmpty,
  }),
  socket: text({
    arg: 'PATH',
    help: 'unix socket of the API (read-write: root and socket-group, mode 0660)',
    default: DEFAULT_SOCKET,
    expected: 'a socket path',
    check: nonEmpty,
  }),
  'socket-ro': text({
    arg: 'PATH',
    help: "read-only socket, mode 0666 (default: the socket's -ro.sock twin; '' for none)",
  }),
  'socket-group': text({
    arg: 'GROUP',
    help: 'group that may use the read-write socket',
    expected: 'a group name or number',
    check: nonEmpty,
  }),
  'spare-root-ports': integer({
    arg: 'N',
    help: 'free pcie-root-ports each q35 domain keeps for hot-plug',
    default: 1,
    min: 0,
    max: 16,
  }),
  'listen-tls': text({
    arg: 'ADDR:PORT',
    help: 'also serve the API on TCP with mutual TLS (for other hosts: migration)',
    expected: 'ADDR:PORT, e.g. 0.0.0.0:16514 or [::1]:16514',
    check: (s) => {
      try {
        parseListen(s);
        return true;
      } catch {
        return false;
      }
    },
  }),
  'tls-cert': text({ arg: 'FILE', help: "this daemon's certificate (PEM), shown to peers in both directions" }),
  'tls-key': text({ arg: 'FILE', help: 'the key of tls-cert (PEM)' }),
  'tls-ca': text({ arg: 'FILE', help: 'the CA (PEM) that must have signed every peer' }),
  qemu: text({
    arg: 'BINARY',
    help: 'the QEMU binary guests run on',
    default: 'qemu-system-x86_64',
    expected: 'a program name or path',
    check: nonEmpty,
  }),
  'qemu-user': text({
    arg: 'USER',
    help: 'run QEMU as this unprivileged user, USER or USER:GROUP (lent /dev/vfio/N, its disks and run directory while it runs)',
    expected: 'a user name or uid, optionally :group',
    check: (s) => /^[^:]+(:[^:]+)?$/.test(s),
  }),
  'migration-stall-timeout': integer({
    arg: 'S',
    help: "cancel an outgoing migration whose RAM sent has not moved for S seconds (0: only migrate's --timeout)",
    default: 30,
    min: 0,
    max: 86400,
  }),
  'migration-incoming-lease': integer({
    arg: 'S',
    help: 'give up an incoming migration S seconds after the last word from its source (its QEMU stopped, devices restored)',
    default: 60,
    min: 1,
    max: 86400,
  }),
  'audit-log': text({
    arg: 'FILE',
    help: `the host changes, one JSON line each (default ${SYSTEM_AUDIT_LOG}, or audit.jsonl in state-dir)`,
    expected: 'a file path',
    check: nonEmpty,
  }),
  'audit-log-max-bytes': integer({
    arg: 'BYTES',
    help: 'rotate the audit log at this size (5 rotated files are kept)',
    default: DEFAULT_AUDIT_MAX_BYTES,
    min: 4096,
    max: 2 ** 40,
  }),
  'log-level': oneOf({
    arg: 'LEVEL',
    help: 'what the daemon logs (JSON lines on stdout)',
    default: 'info',
    values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
  }),
};

export type SettingKey = keyof typeof SETTINGS;
export const SETTING_KEYS = Object.keys(SETTINGS) as SettingKey[];

/** The daemon's settings once resolved; unset optional ones are undefined. */
export type DaemonConfig = { readonly [K in SettingKey]: ValueOf<(typeof SETTINGS)[K]> | undefined } & {
  readonly socket: string;
  readonly 'socket-ro': string;
  readonly host: string;
  readonly 'state-dir': string;
  readonly 'spare-root-ports': number;
  readonly 'audit-log-max-bytes': number;
  readonly 'migration-stall-timeout': number;
  readonly 'migration-incoming-lease': number;
  readonly qemu: string;
  readonly 'log-level': ValueOf<(typeof SETTINGS)['log-level']>;
};

export function envOf(key: SettingKey): string {
  return SETTINGS[key].env ?? `PASSTHRU_${key.toUpperCase().replaceAll('-', '_')}`;
}

/** A default that depends on another setting: the read-only socket sits beside the socket. */
export function derivedDefault(key: SettingKey, socket: string): string | undefined {
  return key === 'socket-ro' ? readOnlySocketOf(socket) : undefined;
}

function nonEmpty(s: string): boolean {
  return s !== '';
}
