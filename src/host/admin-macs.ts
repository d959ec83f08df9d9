import { basename } from 'node:path';
import { type MacAddress, ZERO_MAC } from '../conf/mac.ts';
import { isUplinkPort } from './bind.ts';
import type { Kernel } from './types.ts';

/** One admin MAC of the host's VF tables: which VF of which PF port carries it. */
export interface AdminMac {
  readonly mac: MacAddress;
  /** The PF netdev whose VF table holds it (one per port on a multi-port PF). */
  readonly pfNetdev: string;
  readonly pf: string;
  readonly vf: number;
  /** The VF's PCI address (DDDD:BB:SS.F), from the PF's virtfnN link. */
  readonly address: string | undefined;
}

const DEVICES = '/sys/bus/pci/devices';

/**
 * Every admin MAC programmed on a VF of this host, by anyone: what the kernel's VF tables
 * (IFLA_VF_MAC through each PF netdev) report, zero MACs left out. A VF netdev's own MAC is
 * not an admin MAC unless the table shows it (igb does: it gives each new VF a random one and
 * reports it as the admin MAC): a VF driver's pick is replaced when an admin MAC is set, so it
 * is no owner's MAC. Read only when a prepare sets a MAC (hostdev/guards.ts).
 */
export async function readAdminMacs(kernel: Kernel): Promise<AdminMac[]> {
  const sysfs = kernel.sysfs;
  const out: AdminMac[] = [];
  for (const pf of await sysfs.list(DEVICES)) {
    const numVfs = Number((await sysfs.read(`${DEVICES}/${pf}/sriov_numvfs`)) ?? 0);
    if (!(numVfs > 0)) continue;
    for (const netdev of (await sysfs.list(`${DEVICES}/${pf}/net`)).sort()) {
      if (!isUplinkPort(await sysfs.read(`${DEVICES}/${pf}/net/${netdev}/phys_port_name`))) continue;
      for (const row of await kernel.vfTable(netdev)) {
        if (row.mac === ZERO_MAC) continue;
        const link = await sysfs.readLink(`${DEVICES}/${pf}/virtfn${row.vf}`);
        out.push({ mac: row.mac, pfNetdev: netdev, pf, vf: row.vf, address: link && basename(link) });
      }
    }
  }
  return out;
}
