import { pciAttrs } from '../domain/format-parts.ts';
import type { PciAddress } from '../pci-address.ts';
import { type OutElement, out, outText } from '../xml/tree.ts';
import { formatXml } from '../xml/writer.ts';
import type { NetCap, NodeDeviceDef, PciCap } from './types.ts';

/** Writes a node device in libvirt's element order (virNodeDeviceDefFormat,
 *  virNodeDevCapPCIDefFormat): checked against libvirt 9.0.0's nodedevxml2xml outputs. */
export function formatNodeDevice(def: NodeDeviceDef): string {
  return formatXml(nodeDeviceElement(def));
}

function nodeDeviceElement(def: NodeDeviceDef): OutElement {
  return out(
    'device',
    [],
    [
      outText('name', def.name),
      def.path !== undefined && outText('path', def.path),
      def.parent !== undefined && outText('parent', def.parent),
      def.driver !== undefined && out('driver', [], [outText('name', def.driver)]),
      ...def.caps.map((c) => (c.type === 'pci' ? pciCap(c) : netCap(c))),
    ],
  );
}

const hex = (n: number, width: number): string => `0x${n.toString(16).padStart(width, '0')}`;

function addressElement(a: PciAddress): OutElement {
  return out('address', pciAttrs(a));
}

function pciCap(c: PciCap): OutElement {
  const vf = c.virtFunctions;
  return out(
    'capability',
    [['type', 'pci']],
    [
      c.class !== undefined && outText('class', hex(c.class, 6)),
      outText('domain', String(c.address.domain)),
      outText('bus', String(c.address.bus)),
      outText('slot', String(c.address.slot)),
      outText('function', String(c.address.function)),
      outText('product', c.product.name ?? '', [['id', hex(c.product.id, 4)]]),
      outText('vendor', c.vendor.name ?? '', [['id', hex(c.vendor.id, 4)]]),
      c.physFunction !== undefined && out('capability', [['type', 'phys_function']], [addressElement(c.physFunction)]),
      vf !== undefined &&
        out(
          'capability',
          [
            ['type', 'virt_functions'],
            ['maxCount', vf.maxCount],
          ],
          vf.addresses.map(addressElement),
        ),
      c.headerType !== undefined && out('capability', [['type', c.headerType]]),
      c.iommuGroup !== undefined &&
        out('iommuGroup', [['number', c.iommuGroup.number]], c.iommuGroup.addresses.map(addressElement)),
      c.numaNode !== undefined && out('numa', [['node', c.numaNode]]),
      c.pciExpress !== undefined &&
        out(
          'pci-express',
          [],
          c.pciExpress.links.map((l) =>
            out('link', [
              ['validity', l.validity],
              ['port', l.port],
              ['speed', l.speed],
              ['width', l.width],
            ]),
          ),
        ),
    ],
  );
}

function netCap(c: NetCap): OutElement {
  return out(
    'capability',
    [['type', 'net']],
    [
      outText('interface', c.interface),
      c.address !== undefined && outText('address', c.address),
      c.link !== undefined &&
        out('link', [
          ['speed', c.link.speed],
          ['state', c.link.state],
        ]),
      ...c.features.map((f) => out('feature', [['name', f]])),
      c.subCapability !== undefined && out('capability', [['type', c.subCapability]]),
    ],
  );
}
