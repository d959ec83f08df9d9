import type { CommandSpec } from '../spec.ts';

const load = () => import('../run/service.ts');

/** passthru itself: its version and the daemon's, and shell completion from the command table. */
export const serviceCommands: readonly CommandSpec[] = [
  {
    name: 'version',
    description: 'versions of this client, the daemon, its QEMU and the host backend',
    options: [{ flags: '--json', description: 'JSON output' }],
    run: (inv) => load().then((m) => m.version(inv)),
  },
  {
    name: 'completion',
    description: 'print the shell completion script: eval "$(passthru completion bash)" (or zsh)',
    args: [
      { name: '<shell>', description: "bash or zsh; 'names KIND' prints the names the script offers" },
      { name: '[kind]', description: 'with names: domain, network, devicepool or nodedev (asked of the daemon)' },
    ],
    run: (inv) => load().then((m) => m.completion(inv)),
  },
];
