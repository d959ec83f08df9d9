import { DEFAULT_STATE_DIR } from '../../protocol/wire.ts';
import type { CommandSpec, GroupSpec } from '../spec.ts';

/** Commands that run on this machine without a daemon: XML checks, the sim host, the quickstart. */

const offline = () => import('../run/offline.ts');
const sim = () => import('../run/sim.ts');

export const localGroups: readonly GroupSpec[] = [
  { name: 'sim', description: 'simulated SR-IOV hosts (no hardware needed)' },
];

export const localCommands: readonly CommandSpec[] = [
  {
    name: 'validate',
    description: 'check a domain, network, networkport, device pool or node-device XML file; print every error',
    args: ['<file>'],
    options: [{ flags: '--json', description: 'the kind and every problem as JSON (exit 1 when there is one)' }],
    run: (inv) => offline().then((m) => m.validate(inv)),
  },
  {
    name: 'domxml-to-native',
    description: 'print the QEMU command line passthrud would run for a domain XML (host devices as vfio-pci)',
    args: ['<file>'],
    options: [
      { flags: '--offline', description: 'compute it here, without asking the daemon (same code)' },
      { flags: '--json', description: 'the binary and its arguments as JSON' },
      {
        flags: '--state-dir <dir>',
        description: 'the daemon state directory the paths refer to',
        default: DEFAULT_STATE_DIR,
      },
    ],
    run: (inv) => offline().then((m) => m.domxmlToNative(inv)),
  },
  {
    name: 'sim create',
    description: 'write a sysfs-shaped tree of a simulated host, for passthrud --host sim:DIR',
    args: [{ name: '<dir>', description: 'a new or empty directory' }],
    options: [{ flags: '--profile <name>', description: 'topology profile', default: 'intel-x710-2port' }],
    run: (inv) => sim().then((m) => m.create(inv)),
  },
  {
    name: 'sim profiles',
    description: 'list the built-in topology profiles',
    options: [{ flags: '--json', description: 'JSON output' }],
    run: (inv) => sim().then((m) => m.profiles(inv)),
  },
  {
    name: 'quickstart',
    description: 'show passthru end to end on a simulated host: a real QEMU guest holding a VF',
    options: [{ flags: '--keep', description: 'keep the temporary directory (sim host, state, logs)' }],
    run: (inv) => import('../run/quickstart.ts').then((m) => m.quickstart(inv)),
  },
];
