import { netNodeDeviceName, type NodeDeviceDef, type PcieLinkDef } from '../conf/nodedev/types.ts';
import { pciNodeDeviceName } from '../conf/pci-address.ts';
import type { Inventory, PciDevice } from './inventory.ts';
import type { PcieLink } from './pci-config.ts';

/**
 * The inventory as libvirt node devices: one `pci_*` device per PCI function and one `net_*`
 * device per netdev, whose parent is its function. A function with two netdevs (mlx4 dual
 * port) has two net children, as on the host.
 */
export function nodeDevices(inv: Inventory): NodeDeviceDef[] {
  return inv.devices.flatMap((d) => [pciNodeDevice(d), ...netNodeDevices(d)]);
}

const linkSpeed = (s: number | undefined): string | undefined => (s === undefined ? undefined : String(s));

function pcieLinks(cap: PcieLink | undefined, sta: PcieLink | undefined): PcieLinkDef[] {
  const links: PcieLinkDef[] = [];
  if (cap) {
    const speed = linkSpeed(cap.speed);
    links.push({
      validity: 'cap',
      ...(cap.port === undefined ? {} : { port: cap.port }),
      ...(speed === undefined ? {} : { speed }),
      width: cap.width,
    });
  }
  if (sta) {
    const speed = linkSpeed(sta.speed);
    links.push({ validity: 'sta', ...(speed === undefined ? {} : { speed }), width: sta.width });
  }
  return links;
}

export function pciNodeDevice(d: PciDevice): NodeDeviceDef {
  const pcie = d.config?.pcie;
  return {
    name: pciNodeDeviceName(d.address),
    path: d.path,
    parent: d.parent === undefined ? 'computer' : pciNodeDeviceName(d.parent),
    ...(d.driver === undefined ? {} : { driver: d.driver }),
    caps: [
      {
        type: 'pci',
        class: d.class,
        address: d.address,
        product: { id: d.device },
        vendor: { id: d.vendor },
        ...(d.physfn ? { physFunction: d.physfn.pf } : {}),
        ...(d.sriov ? { virtFunctions: { maxCount: d.sriov.totalVfs, addresses: d.sriov.vfs.filter(Boolean) } } : {}),
        ...(d.headerType === 'endpoint' ? {} : { headerType: d.headerType }),
        ...(d.iommuGroup === undefined ? {} : { iommuGroup: { number: d.iommuGroup, addresses: d.iommuGroupMembers } }),
        ...(d.numaNode === undefined ? {} : { numaNode: d.numaNode }),
        ...(pcie ? { pciExpress: { links: pcieLinks(pcie.linkCap, pcie.linkSta) } } : {}),
      },
    ],
  };
}

function netNodeDevices(d: PciDevice): NodeDeviceDef[] {
  return d.netdevs.map((n) => ({
    name: netNodeDeviceName(n.name, n.mac),
    path: `${d.path}/net/${n.name}`,
    parent: pciNodeDeviceName(d.address),
    caps: [
      {
        type: 'net',
        interface: n.name,
        ...(n.mac === undefined ? {} : { address: n.mac }),
        ...(n.operstate === undefined && n.speed === undefined
          ? {}
          : {
              link: {
                ...(n.speed === undefined ? {} : { speed: n.speed }),
                ...(n.operstate === undefined ? {} : { state: n.operstate }),
              },
            }),
        features: [],
        subCapability: '80203',
      },
    ],
  }));
}
