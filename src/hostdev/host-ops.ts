import { PassthruError } from '../conf/error.ts';
import { type PciAddress, parsePciAddress, samePciAddress } from '../conf/pci-address.ts';
import { readAdminMacs } from '../host/admin-macs.ts';
import { bindToStub, rebindHostDriver } from '../host/bind.ts';
import { readHostUse } from '../host/host-use.ts';
import { type PciDevice, readPciDevice } from '../host/inventory.ts';
import { resetDevice } from '../host/reset.ts';
import { setVfCount } from '../host/sriov.ts';
import type { Kernel, VfConfig } from '../host/types.ts';
import { associatePort, disassociatePort } from '../host/port-profile.ts';
import { applyVfSettings, pfIsUp } from '../host/vf-apply.ts';
import { checkAssignable } from './check.ts';
import type { DeviceFacts, HostOps, VfFacts } from './facts.ts';

/** The PF's uplink netdev: the first port that is not a switchdev representor. */
export function uplinkNetdev(pf: PciDevice): string | undefined {
  return [...pf.netdevs].filter((n) => !n.representor).sort((a, b) => a.devPort - b.devPort)[0]?.name;
}

async function tryRead(kernel: Kernel, address: PciAddress): Promise<PciDevice | undefined> {
  try {
    return await readPciDevice(kernel.sysfs, address);
  } catch (err) {
    if (err instanceof PassthruError && err.code === 'NO_DEVICE') return undefined;
    throw err;
  }
}

async function vfFacts(
  kernel: Kernel,
  pfAddress: PciAddress,
  index: number,
  pf: PciDevice | undefined,
): Promise<VfFacts> {
  const ports = (pf?.netdevs ?? [])
    .filter((n) => !n.representor)
    .map((n) => ({ name: n.name, devPort: n.devPort }))
    .sort((a, b) => a.devPort - b.devPort);
  const up = await Promise.all(ports.map(async (p) => [p.name, await pfIsUp(kernel.sysfs, p.name)] as const));
  return {
    pf: pfAddress,
    pfNetdev: pf ? uplinkNetdev(pf) : undefined,
    index,
    pfDriver: pf?.driver,
    pfUp: Object.fromEntries(up),
    pfPorts: ports,
  };
}

/** The other functions of a device's slot (DDDD:BB:SS.*) that are not VFs: a VF shares a slot
 *  number with its siblings by routing-ID arithmetic only, never a multifunction device. */
async function slotFunctions(kernel: Kernel, name: string): Promise<PciAddress[]> {
  const slot = name.slice(0, -1);
  const out: PciAddress[] = [];
  for (const other of await kernel.sysfs.list('/sys/bus/pci/devices')) {
    if (other === name || !other.startsWith(slot)) continue;
    if ((await kernel.sysfs.readLink(`/sys/bus/pci/devices/${other}/physfn`)) === undefined) {
      out.push(parsePciAddress(other));
    }
  }
  return out.sort((a, b) => a.function - b.function);
}

/** HostOps over a host backend: the facts come from the shared inventory code, the changes
 *  from the shared binding algorithm and the backend's rtnetlink. */
export function hostOps(kernel: Kernel): HostOps {
  return {
    async facts(address): Promise<DeviceFacts | undefined> {
      const d = await tryRead(kernel, address);
      if (!d) return undefined;
      const peers = await Promise.all(
        d.iommuGroupMembers.filter((m) => !samePciAddress(m, address)).map((m) => tryRead(kernel, m)),
      );
      const pf = d.physfn ? await tryRead(kernel, d.physfn.pf) : undefined;
      return {
        address,
        endpoint: d.headerType === 'endpoint',
        driver: d.driver,
        iommuGroup: d.iommuGroup,
        groupPeers: peers
          .filter((p): p is PciDevice => p !== undefined)
          .map((p) => ({ address: p.address, driver: p.driver, endpoint: p.headerType === 'endpoint' })),
        vf: d.physfn ? await vfFacts(kernel, d.physfn.pf, d.physfn.index, pf) : undefined,
        slotFunctions: d.physfn ? [] : await slotFunctions(kernel, d.name),
        multifunction: d.multifunction,
      };
    },
    hostUse: () => readHostUse(kernel.sysfs),
    adminMacs: () => readAdminMacs(kernel),
    async vfRow(pfNetdev, vf): Promise<VfConfig | undefined> {
      return (await kernel.vfTable(pfNetdev)).find((r) => r.vf === vf);
    },
    setVf: async (pfNetdev, vf, settings) => {
      await applyVfSettings(kernel, pfNetdev, vf, settings);
    },
    associatePort: async (pfNetdev, vf, profile, incoming) => {
      await associatePort(kernel, pfNetdev, vf, profile, incoming);
    },
    disassociatePort: (pfNetdev, vf, profile) => disassociatePort(kernel, pfNetdev, vf, profile),
    bindStub: (address, stub) => bindToStub(kernel, address, stub),
    rebindHostDriver: (address, hostDriver) => rebindHostDriver(kernel, address, hostDriver),
    check: (address, holder) => checkAssignable(kernel, holder, address),
    reset: (address) => resetDevice(kernel, address),
    present: (address) => kernel.present(address),
    setVfCount: (pf, n, opts) => setVfCount(kernel, pf, n, opts),
  };
}
