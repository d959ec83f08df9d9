import type { CommandSpec } from '../spec.ts';

const load = () => import('../run/device.ts');

const flags = [
  { flags: '--live', description: 'change the running domain' },
  { flags: '--config', description: 'change the persistent definition (with --live: both)' },
] as const;

const timeout = {
  flags: '--timeout <ms>',
  description: 'how long to wait for the guest to let go (default 5000); then the answer is "pending", exit code 2',
} as const;

/** Guest devices of a domain: hot-plug, hot-unplug, its NICs. */
export const deviceCommands: readonly CommandSpec[] = [
  {
    name: 'attach-device',
    description: 'plug a <hostdev> or <interface type=hostdev> (or a <devices> of them: one multifunction card) in',
    args: ['<name>', { name: '<file>', description: 'device XML file' }],
    options: [...flags],
    run: (inv) => load().then((m) => m.attach(inv)),
  },
  {
    name: 'detach-device',
    description: 'unplug the device(s) the XML names; exit code 2 while the guest has not let go',
    args: ['<name>', { name: '<file>', description: 'device XML file' }],
    options: [...flags, timeout],
    run: (inv) => load().then((m) => m.detach(inv)),
  },
  {
    name: 'detach-device-alias',
    description: 'unplug the device with this alias (hostdev1, ua-...); exit code 2 while the guest has not let go',
    args: ['<name>', '<alias>'],
    options: [...flags, timeout],
    run: (inv) => load().then((m) => m.detachAlias(inv)),
  },
  {
    name: 'domiflist',
    description: "a domain's NICs: type, MAC, guest address, VF, failover role, whether the guest sees it",
    args: ['<name>'],
    options: [{ flags: '--json', description: 'JSON output' }],
    run: (inv) => load().then((m) => m.domiflist(inv)),
  },
];
