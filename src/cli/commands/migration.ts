import type { CommandSpec } from '../spec.ts';

const load = () => import('../run/migration.ts');

export const migrationCommands: readonly CommandSpec[] = [
  {
    name: 'migrate',
    description: 'move a running domain to another passthrud, its passthrough NICs included',
    args: ['<name>', { name: '<dest>', description: 'the destination daemon: unix:/path/to.sock or tls://HOST:PORT' }],
    options: [
      { flags: '--live', description: 'keep the guest running while its memory is copied (default: paused)' },
      { flags: '--unplug-hostdevs', description: 'hot-unplug pool VFs before and plug new ones after' },
      { flags: '--timeout <s>', description: 'cancel the migration after this many seconds (default 120)' },
      {
        flags: '--stall-timeout <s>',
        description: "cancel when no RAM moves for this many seconds (default: the daemon's, 30; 0: never)",
      },
      { flags: '--bandwidth <mibs>', description: 'cap the migration stream at this many MiB/s' },
      {
        flags: '--incoming-lease <s>',
        description: "the destination gives up this many seconds after the source's last word (default: its own, 60)",
      },
      { flags: '--json', description: 'progress and the result as JSON lines' },
    ],
    run: (inv) => load().then((m) => m.migrate(inv)),
  },
];
