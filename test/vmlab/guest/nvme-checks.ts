/**
 * Runs INSIDE the VM-lab guest beside igb-checks.ts: generic PCI SR-IOV on QEMU's nvme (VFs with
 * no netdev and, with autoprobe off, no driver), the kind of VF a GPU or NVMe pool hands out.
 * Prints one line `VMLAB-NVME <json>`.
 */
import { existsSync } from 'node:fs';
import { formatPciAddress } from '../../../src/conf/pci-address.ts';
import { bindToStub, currentDriver, rebindHostDriver, vfOf } from '../../../src/host/bind.ts';
import { checkAssignable } from '../../../src/host/check.ts';
import { findDevice, readInventory } from '../../../src/host/inventory.ts';
import { openLinuxHost } from '../../../src/host/linux/kernel.ts';
import { setVfCount } from '../../../src/host/sriov.ts';
import { type HostChange, watchHost } from '../../../src/host/watch.ts';
import { errorOf } from './scenario.ts';

const kernel = await openLinuxHost();
const out: Record<string, unknown> = {};
const inv0 = await readInventory(kernel.sysfs);
const pf = inv0.devices.find((d) => d.vendor === 0x1b36 && d.device === 0x0010 && d.sriov);
if (!pf) {
  console.log(`VMLAB-NVME ${JSON.stringify({ fatal: 'no nvme PF with SR-IOV' })}`);
  process.exit(0);
}
try {
  out['pf'] = { name: pf.name, driver: pf.driver, totalVfs: pf.sriov?.totalVfs, netdevs: pf.netdevs.length };
  // The nvme driver gives up on QEMU's offline VFs: keep them driverless, as for vfio.
  const r = await setVfCount(kernel, pf.address, 2, { autoprobe: false, timeoutMs: 30_000 });
  const inv = await readInventory(kernel.sysfs);
  out['vfs'] = r.vfs.map((a) => {
    const d = findDevice(inv, a);
    return {
      name: formatPciAddress(a),
      index: d?.physfn?.index,
      driver: d?.driver ?? null,
      netdevs: d?.netdevs.length,
      groupSize: d?.iommuGroupMembers.length,
    };
  });
  const vf = r.vfs[0];
  if (!vf) throw new Error('no VF');
  try {
    out['vfOf'] = await vfOf(kernel.sysfs, vf);
  } catch (err) {
    out['vfOf'] = errorOf(err);
  }
  out['check'] = await checkAssignable(kernel.sysfs, vf).then((a) => ({
    assignable: a.assignable,
    reasons: a.reasons,
  }));
  // Only the kernel's uevents can tell a driver bind of a function without netdev: no polling.
  const seen: HostChange[] = [];
  const watcher = await watchHost(kernel, (c) => seen.push(...c), { pollMs: 1_000_000_000, debounceMs: 100 });
  out['bind'] = await bindToStub(kernel, vf);
  for (let i = 0; i < 100 && !seen.some((c) => c.fields?.includes('driver')); i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  watcher.stop();
  out['uevent'] = seen.filter((c) => c.name === formatPciAddress(vf)).flatMap((c) => c.fields ?? []);
  const group = (await kernel.sysfs.readLink(`/sys/bus/pci/devices/${formatPciAddress(vf)}/iommu_group`))
    ?.split('/')
    .pop();
  out['onStub'] = {
    driver: await currentDriver(kernel.sysfs, vf),
    devVfio: group !== undefined && existsSync(`/dev/vfio/${group}`),
  };
  await rebindHostDriver(kernel, vf);
  out['afterRebind'] = (await currentDriver(kernel.sysfs, vf)) ?? null;
  out['off'] = (await setVfCount(kernel, pf.address, 0, { autoprobe: true, timeoutMs: 30_000 })).after;
} catch (err) {
  out['error'] = errorOf(err);
}
kernel.close();
console.log(`VMLAB-NVME ${JSON.stringify(out)}`);
process.exit(0);
