import type { CommandSpec } from '../spec.ts';

const load = () => import('../run/nodedev.ts');
const device = { name: '<name>', description: 'node-device name or PCI address' };
const pf = { name: '<pf>', description: 'the PF: its node-device name, PCI address or netdev' };
const json = { flags: '--json', description: 'JSON output' };

export const nodedevCommands: readonly CommandSpec[] = [
  {
    name: 'nodedev-list',
    description: "list the host's devices",
    options: [{ flags: '--cap <cap>', description: 'only devices with this capability: pci or net' }, json],
    run: (inv) => load().then((m) => m.list(inv)),
  },
  {
    name: 'nodedev-dumpxml',
    description: "print a device's node-device XML",
    args: [{ name: '<name>', description: 'e.g. pci_0000_06_10_2 or net_enp6s0f0_52_54_00_aa_bb_cc' }],
    run: (inv) => load().then((m) => m.dumpxml(inv)),
  },
  {
    name: 'nodedev-vfs',
    description: "print a PF's VF table (admin MAC, VLAN, driver of each VF)",
    args: [pf],
    options: [json],
    run: (inv) => load().then((m) => m.vfs(inv)),
  },
  {
    name: 'nodedev-detach',
    description: "detach a PCI device from its host driver and bind vfio-pci (for managed='no')",
    args: [device],
    options: [
      { flags: '--driver <name>', description: 'the vfio driver: vfio-pci or a variant driver', default: 'vfio-pci' },
      {
        flags: '--force',
        description:
          "detach even a device the host needs (its IOMMU group holds the default route's NIC or a mounted disk)",
      },
    ],
    run: (inv) => load().then((m) => m.detach(inv)),
  },
  {
    name: 'nodedev-reattach',
    description: 'give a detached PCI device back to its host driver',
    args: [device],
    run: (inv) => load().then((m) => m.reattach(inv)),
  },
  {
    name: 'nodedev-reset',
    description: "reset a PCI device (FLR, else PM reset, else bus reset: libvirt's order; not while on vfio-pci)",
    args: [device],
    run: (inv) => load().then((m) => m.reset(inv)),
  },
  {
    name: 'nodedev-check',
    description: 'can this PCI device be given to a guest, and if not, exactly why',
    args: [device],
    options: [json],
    run: (inv) => load().then((m) => m.check(inv)),
  },
  {
    name: 'nodedev-sriov',
    description: "set a PF's VF count safely (through 0, refused while a VF is in use, waits for the VFs)",
    args: [{ name: '<pf>', description: 'the PF: node-device name, PCI address or netdev' }],
    options: [
      { flags: '--numvfs <n>', description: 'how many VFs', required: true },
      { flags: '--autoprobe <on|off>', description: 'whether the host drivers take the new VFs' },
    ],
    run: (inv) => load().then((m) => m.sriov(inv)),
  },
];
