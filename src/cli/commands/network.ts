import type { PoolKind } from '../../protocol/wire.ts';
import type { CommandSpec } from '../spec.ts';

const load = () => import('../run/network.ts');
const json = { flags: '--json', description: 'JSON output' };
const name = '<name>';

/** virsh's words for each kind: `net-*` for hostdev networks, `devpool-*` for device pools
 *  (virsh's `pool-*` are storage pools). */
function poolCommands(kind: PoolKind): CommandSpec[] {
  const prefix = kind === 'network' ? 'net' : 'devpool';
  const what = kind === 'network' ? 'hostdev network' : 'device pool';
  return [
    {
      name: `${prefix}-define`,
      description: `define (or redefine) a ${what} from its XML`,
      args: ['<file>'],
      run: (inv) => load().then((m) => m.define(kind, inv)),
    },
    {
      name: `${prefix}-undefine`,
      description: `remove an inactive ${what}'s definition`,
      args: [name],
      run: (inv) => load().then((m) => m.undefine(kind, inv)),
    },
    {
      name: `${prefix}-start`,
      description: `start a ${what}: check it against the host and hand out its devices`,
      args: [name],
      run: (inv) => load().then((m) => m.start(kind, inv)),
    },
    {
      name: `${prefix}-destroy`,
      description: `stop a ${what} (refused while a domain holds one of its devices)`,
      args: [name],
      run: (inv) => load().then((m) => m.destroy(kind, inv)),
    },
    {
      name: `${prefix}-autostart`,
      description: `start a ${what} with the daemon`,
      args: [name],
      options: [{ flags: '--disable', description: 'no longer start it with the daemon' }],
      run: (inv) => load().then((m) => m.autostart(kind, inv)),
    },
    {
      name: `${prefix}-list`,
      description: `list ${what}s (active ones unless --all)`,
      options: [{ flags: '--all', description: 'also the inactive ones' }, json],
      run: (inv) => load().then((m) => m.list(kind, inv)),
    },
    {
      name: `${prefix}-dumpxml`,
      description: `print a ${what}'s XML (live: with the devices it resolved to on this host)`,
      args: [name],
      options: [{ flags: '--inactive', description: 'the stored definition' }],
      run: (inv) => load().then((m) => m.dumpxml(kind, inv)),
    },
    {
      name: `${prefix}-info`,
      description: `size, free, in use and by whom, quarantined and unhealthy devices of a ${what}`,
      args: [name],
      options: [json],
      run: (inv) => load().then((m) => m.info(kind, inv)),
    },
  ];
}

export const networkCommands: readonly CommandSpec[] = [
  ...poolCommands('network'),
  ...poolCommands('devicepool'),
  {
    name: 'nodedev-release',
    description: 'take a device out of quarantine: its device pools may hand it out again',
    args: [{ name: '<device>', description: 'PCI address (0000:3b:00.0) or node-device name' }],
    run: (inv) => load().then((m) => m.release(inv)),
  },
  {
    name: 'net-port-create',
    description: "hold a VF of a hostdev network for a port's owner (libvirt's network port XML); prints its VF",
    args: ['<network>', '<file>'],
    run: (inv) => load().then((m) => m.portCreate(inv)),
  },
  {
    name: 'net-port-delete',
    description: "give a network port's VF back to its network",
    args: ['<network>', '<port-uuid>'],
    run: (inv) => load().then((m) => m.portDelete(inv)),
  },
  {
    name: 'net-port-list',
    description: "list a network's ports: UUID, owner, MAC and VF",
    args: ['<network>'],
    options: [json],
    run: (inv) => load().then((m) => m.portList(inv)),
  },
  {
    name: 'net-port-dumpxml',
    description: "print a network port's XML (with the VF it is plugged into)",
    args: ['<network>', '<port-uuid>'],
    run: (inv) => load().then((m) => m.portDumpxml(inv)),
  },
  {
    name: 'domhostdev',
    description: 'list every PCI device a domain holds, pool VFs included, with their interface or pool',
    args: [name],
    options: [json],
    run: (inv) => load().then((m) => m.domhostdev(inv)),
  },
];
