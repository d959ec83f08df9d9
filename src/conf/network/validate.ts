import type { PassthruError } from '../error.ts';
import { formatPciAddress } from '../pci-address.ts';
import { collectProblems, type Report, withoutProblems } from '../problems.ts';
import { isHostdevMode, type NetworkDef } from './types.ts';

/**
 * Whole-definition rules of a network (libvirt's network_conf.c parse checks and
 * bridge_driver.c networkValidate), each naming the element and its line.
 */
export function networkProblems(def: NetworkDef): PassthruError[] {
  return collectProblems((report) => {
    checkForward(def, report);
    checkPortgroups(def, report);
  });
}

export function validateNetwork(def: NetworkDef): NetworkDef {
  return withoutProblems(def, networkProblems(def));
}

function checkForward(def: NetworkDef, report: Report): void {
  const f = def.forward;
  const net = def.name;
  if (!f) return;
  const hostdev = isHostdevMode(f.mode);
  const kinds = [f.addresses.length > 0, f.interfaces.length > 0, f.pfs.length > 0, f.selectors.length > 0].filter(
    Boolean,
  );
  if (kinds.length > 1) {
    report(
      f.line,
      'forward',
      `<address>, <interface>, <pf> and <select> elements of <forward> in network ${net} are mutually exclusive`,
    );
  }
  if (hostdev) {
    for (const i of f.interfaces) {
      report(
        i.line,
        'interface',
        `hostdev network '${net}' lists '${i.dev}' in the device pool, but hostdev networks require all devices to be listed by PCI address, not network device name`,
      );
    }
    if (def.bridge !== undefined) report(f.line, 'forward', `a bridge name is not allowed in hostdev network '${net}'`);
  } else {
    for (const a of f.addresses) {
      report(
        a.line,
        'address',
        `network '${net}' has forward mode '${f.mode}' but lists a device by PCI address in the device pool. This is only supported for networks with forward mode 'hostdev'`,
      );
    }
    for (const s of f.selectors)
      report(s.line, 'select', `device selectors are only supported for networks with forward mode 'hostdev'`);
    if (f.managed !== undefined)
      report(f.line, 'forward', `managed is only meaningful for forward mode 'hostdev', not '${f.mode}'`);
    if (f.driver !== undefined)
      report(f.line, 'forward', `a <driver> is only meaningful for forward mode 'hostdev', not '${f.mode}'`);
  }
  const seen = new Set<string>();
  for (const a of f.addresses) {
    const key = formatPciAddress(a);
    if (seen.has(key)) report(a.line, 'address', `PCI device '${key}' can only be listed once in network ${net}`);
    seen.add(key);
  }
  const devs = new Set<string>();
  for (const i of f.interfaces) {
    if (devs.has(i.dev)) report(i.line, 'interface', `interface '${i.dev}' can only be listed once in network ${net}`);
    devs.add(i.dev);
  }
  const vport = def.virtualport?.type;
  if (hostdev && (vport === 'openvswitch' || vport === 'midonet')) {
    report(
      def.virtualport?.line,
      'virtualport',
      `<virtualport type='${vport}'> not supported for network '${net}' which uses SR-IOV Virtual Functions via PCI passthrough`,
    );
  }
  if (hostdev && def.vlan && (def.vlan.trunk || def.vlan.tags.length > 1)) {
    report(def.line, 'vlan', `network '${net}': vlan trunking is not supported by SR-IOV network devices`);
  }
}

function checkPortgroups(def: NetworkDef, report: Report): void {
  const f = def.forward;
  const net = def.name;
  const names = new Set<string>();
  let defaults = 0;
  for (const p of def.portgroups) {
    if (names.has(p.name)) report(p.line, 'portgroup', `portgroup name '${p.name}' is used twice in network ${net}`);
    names.add(p.name);
    if (p.default) defaults++;
    if (p.default && defaults > 1) report(p.line, 'portgroup', `network '${net}' has more than one default portgroup`);
    if (f && isHostdevMode(f.mode) && p.vlan && (p.vlan.trunk || p.vlan.tags.length > 1)) {
      report(p.line, 'portgroup', `portgroup '${p.name}': vlan trunking is not supported by SR-IOV network devices`);
    }
  }
}
