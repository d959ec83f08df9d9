import type { CommandSpec } from '../spec.ts';

const load = () => import('../run/observe.ts');

/** The daemon looked at from outside: what it changed on the host, and its metrics. */
export const observeCommands: readonly CommandSpec[] = [
  {
    name: 'audit',
    description: 'show the changes passthrud made to the host (bind, VF settings, VF count, QEMU), oldest first',
    options: [
      {
        flags: '--since <time>',
        description: 'only changes from then on: a date and time (2026-11-30T06:00Z) or an age (90s, 10m, 2h, 1d)',
      },
      { flags: '--device <addr>', description: 'only changes of this PCI function (0000:06:02.3)' },
      { flags: '--limit <n>', description: 'at most the newest n changes (default 1000)' },
      { flags: '--json', description: 'the entries as JSON (one array)' },
    ],
    run: (inv) => load().then((m) => m.audit(inv)),
  },
  {
    name: 'metrics',
    description: "print passthrud's metrics as Prometheus scrapes them (GET /metrics)",
    run: (inv) => load().then((m) => m.metrics(inv)),
  },
];
