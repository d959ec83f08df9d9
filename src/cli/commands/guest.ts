import type { CommandSpec } from '../spec.ts';

const load = () => import('../run/guest.ts');

/** Running a guest: its console and its lifecycle beyond start/destroy. */
export const guestCommands: readonly CommandSpec[] = [
  {
    name: 'console',
    description: "attach the terminal to a running guest's serial console (Ctrl+] leaves)",
    args: ['<name>'],
    run: (inv) => load().then((m) => m.console(inv)),
  },
];
