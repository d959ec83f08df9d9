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
  {
    name: 'shutdown',
    description: 'press the ACPI power button and wait for the guest to shut off (exit 2 if it does not)',
    args: ['<name>'],
    options: [{ flags: '--timeout <seconds>', description: 'how long to wait', default: '120' }],
    run: (inv) => load().then((m) => m.shutdown(inv)),
  },
  {
    name: 'reboot',
    description: 'reboot the guest through the ACPI power button, in the same QEMU (exit 2 if it does not go down)',
    args: ['<name>'],
    options: [{ flags: '--timeout <seconds>', description: 'how long to wait for it to go down', default: '120' }],
    run: (inv) => load().then((m) => m.reboot(inv)),
  },
  {
    name: 'suspend',
    description: "pause a running guest's vCPUs",
    args: ['<name>'],
    run: (inv) => load().then((m) => m.suspend(inv)),
  },
  {
    name: 'resume',
    description: 'let a paused guest run again',
    args: ['<name>'],
    run: (inv) => load().then((m) => m.resume(inv)),
  },
  {
    name: 'dominfo',
    description: 'state, vCPUs, memory, CPU time, uptime and host devices of a domain',
    args: ['<name>'],
    options: [{ flags: '--json', description: 'JSON output' }],
    run: (inv) => load().then((m) => m.dominfo(inv)),
  },
  {
    name: 'domstate',
    description: "a domain's state",
    args: ['<name>'],
    options: [
      { flags: '--reason', description: 'and why it is in that state' },
      { flags: '--json', description: 'JSON output' },
    ],
    run: (inv) => load().then((m) => m.domstate(inv)),
  },
  {
    name: 'autostart',
    description: 'start the domain whenever passthrud starts',
    args: ['<name>'],
    options: [{ flags: '--disable', description: 'no longer start it with passthrud' }],
    run: (inv) => load().then((m) => m.autostart(inv)),
  },
];
