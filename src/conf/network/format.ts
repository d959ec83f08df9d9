import { hostdevDriverOut, pciAttrs, vfBandwidthOut, virtualPortOut, vlanOut } from '../domain/format-parts.ts';
import type { FormatFlags } from '../format-flags.ts';
import { type OutElement, out, outText } from '../xml/tree.ts';
import { formatXml } from '../xml/writer.ts';
import {
  type DeviceSelector,
  type ForwardDef,
  isHostdevMode,
  type NetworkDef,
  type NetworkVfAttributes,
} from './types.ts';

/** NetworkDef -> XML in libvirt's style and order (virNetworkDefFormatBuf). */
export function formatNetworkXml(def: NetworkDef, flags: FormatFlags = {}): string {
  return formatXml(networkOut(def, flags));
}

const yn = (b: boolean | undefined): string | undefined => (b === undefined ? undefined : b ? 'yes' : 'no');

function networkOut(def: NetworkDef, flags: FormatFlags = {}): OutElement {
  return out(
    'network',
    [
      ['trustGuestRxFilters', yn(def.trustGuestRxFilters)],
      ['spoofCheck', yn(def.vf?.spoofCheck)],
    ],
    [
      outText('name', def.name),
      def.uuid !== undefined && outText('uuid', def.uuid),
      def.forward && forwardOut(def.forward, flags),
      def.bridge !== undefined && out('bridge', [['name', def.bridge]]),
      vfBandwidthOut(def.vf?.bandwidth),
      vlanOut(def.vlan),
      virtualPortOut(def.virtualport),
      linkOut(def.vf),
      ...def.portgroups.map((p) =>
        out(
          'portgroup',
          [
            ['name', p.name],
            ['default', yn(p.default)],
            ['trustGuestRxFilters', yn(p.trustGuestRxFilters)],
            ['spoofCheck', yn(p.vf?.spoofCheck)],
          ],
          [vlanOut(p.vlan), virtualPortOut(p.virtualport), vfBandwidthOut(p.vf?.bandwidth), linkOut(p.vf)],
        ),
      ),
    ],
  );
}

function forwardOut(f: ForwardDef, flags: FormatFlags): OutElement {
  const hostdev = isHostdevMode(f.mode);
  // libvirt: a pool enumerated from <pf> is written in live XML only; inactive shows just the PF.
  const addresses = f.pfs.length > 0 && flags.inactive ? [] : f.addresses;
  return out(
    'forward',
    [
      ['dev', hostdev ? undefined : (f.dev ?? f.interfaces[0]?.dev)],
      ['mode', f.mode],
      ['managed', hostdev ? (f.managed ? 'yes' : 'no') : undefined],
    ],
    [
      hostdevDriverOut(f.driver),
      ...f.pfs.map((p) => out('pf', [['dev', p.dev]])),
      ...f.selectors.map(selectorOut),
      ...f.interfaces.map((i) => out('interface', [['dev', i.dev]])),
      ...addresses.map((a) => out('address', [['type', 'pci'], ...pciAttrs(a)])),
    ],
  );
}

const hex4 = (n: number | undefined): string | undefined =>
  n === undefined ? undefined : n.toString(16).padStart(4, '0');

export function selectorOut(s: DeviceSelector): OutElement {
  const ranges = s.vfs?.map(([lo, hi]) => (lo === hi ? `${lo}` : `${lo}-${hi}`)).join(',');
  return out('select', [
    ['vendor', hex4(s.vendor)],
    ['device', hex4(s.device)],
    ['driver', s.driver],
    ['pf', s.pf === undefined ? undefined : ranges === undefined ? s.pf : `${s.pf}#${ranges}`],
    ['numa', s.numaNode],
    ['tags', s.tags?.join(',')],
  ]);
}

/** passthru's `<link state>` for the VFs of a network or portgroup. */
function linkOut(vf: NetworkVfAttributes | undefined): OutElement | false {
  return vf?.linkState !== undefined && out('link', [['state', vf.linkState]]);
}
