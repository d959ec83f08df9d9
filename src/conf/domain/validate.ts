import { carriedDisks, typedDisks } from './disk.ts';
import type { PassthruError } from '../error.ts';
import { formatPciAddress } from '../pci-address.ts';
import { collectProblems, type Report, withoutProblems } from '../problems.ts';
import { isQ35 } from './postparse.ts';
import type { ControllerDef, DomainDef, HostdevDef, InterfaceDef, PciHostdevSource, PoolHostdevDef } from './types.ts';

/**
 * Whole-definition rules (libvirt's domain_validate.c and the parts of qemu_validate.c that do
 * not need QEMU), run after postParse. Each problem names the element and its line.
 * `domainProblems` returns all of them (for `passthru validate`); `validateDomain` throws the first.
 */
export function validateDomain(def: DomainDef): DomainDef {
  return withoutProblems(def, domainProblems(def));
}

export function domainProblems(def: DomainDef): PassthruError[] {
  return collectProblems((report) => {
    if (def.memoryKiB <= 0) report(def.line, 'memory', 'memory must be greater than 0');
    if (def.vcpus < 1) report(def.line, 'vcpu', 'a domain needs at least 1 vCPU');
    for (const h of allHostdevs(def)) checkHostdev(h, report);
    for (const i of def.devices.interfaces) checkInterface(i, report);
    checkHostSources(def, report);
    checkGuestAddresses(def, report);
    checkAliases(def, report);
    checkBootOrder(def, report);
    checkDisks(def, report);
    checkTeaming(def, report);
    checkControllers(def, report);
  });
}

/** virPCIDeviceAddressIsValid: the host bridge 0000:00:00.0 is never a device to assign. And
 *  the backend is vfio: modern libvirt refuses legacy KVM assignment at start too. */
function checkSourceAddress(src: PciHostdevSource, line: number | undefined, element: string, report: Report): void {
  const backend = src.driver?.name;
  if (backend === 'kvm' || backend === 'xen') {
    report(
      line,
      element,
      `<driver name='${backend}'> PCI assignment is not supported: passthru assigns devices with vfio`,
      'CONFIG_UNSUPPORTED',
    );
  }
  const a = src.address;
  if (a.domain === 0 && a.bus === 0 && a.slot === 0) {
    report(
      line,
      element,
      `invalid PCI address ${formatPciAddress(a)}: at least one of domain, bus, or slot must be > 0`,
    );
  }
}

/** Plain hostdevs and those still waiting for a device from their pool. */
function allHostdevs(def: DomainDef): (HostdevDef | PoolHostdevDef)[] {
  return [...def.devices.hostdevs, ...(def.devices.poolHostdevs ?? [])];
}

function checkHostdev(h: HostdevDef | PoolHostdevDef, report: Report): void {
  if (!('pool' in h)) checkSourceAddress(h.source, h.line, 'hostdev', report);
  const g = h.guestAddress;
  if (g && g.type !== 'pci' && g.type !== 'unassigned') {
    report(h.line, 'hostdev', "PCI host devices must use 'pci' or 'unassigned' address type");
  }
  if (h.assigned === false && g !== undefined && g.type !== 'unassigned') {
    report(h.line, 'hostdev', "assigned='no' forbids an <address>: the function gets no guest device");
  }
  if (h.assigned === true && g?.type === 'unassigned') {
    report(h.line, 'hostdev', "assigned='yes' contradicts <address type='unassigned'/>");
  }
  const unassigned = h.assigned === false || g?.type === 'unassigned';
  if (unassigned && h.bootOrder !== undefined)
    report(h.line, 'hostdev', 'an unassigned host device cannot have a <boot order>');
  if (unassigned && h.teaming)
    report(h.line, 'hostdev', 'an unassigned host device cannot be part of a <teaming> pair');
  if (h.teaming && h.teaming.type !== 'transient')
    report(h.line, 'hostdev', "teaming hostdev devices must have type='transient'");
  if (h.rom?.enabled === false && (h.rom.bar !== undefined || h.rom.file !== undefined)) {
    report(h.line, 'hostdev', 'ROM tuning is not supported when ROM is disabled');
  }
  const seen = new Map<number, number | undefined>();
  for (const n of h.netdevs ?? []) {
    if (seen.has(n.port))
      report(
        n.line,
        'netdev',
        `port ${n.port} is declared twice in this <hostdev> (first at line ${seen.get(n.port)})`,
      );
    seen.set(n.port, n.line);
    if (n.vlan && (n.vlan.trunk || n.vlan.tags.length > 1)) {
      report(n.line, 'netdev', `port ${n.port}: vlan trunking is not supported by SR-IOV network devices`);
    }
  }
}

function ifaceName(i: InterfaceDef): string {
  return i.mac ?? i.alias ?? `type='${i.type}'`;
}

function checkInterface(i: InterfaceDef, report: Report): void {
  const name = ifaceName(i);
  const isHostdev = i.type === 'hostdev' || i.type === 'hostdev-hybrid';
  if (isHostdev) checkSourceAddress(i.source, i.line, 'interface', report);
  if (i.vlan) {
    const vport = i.virtualport?.type;
    const carries =
      isHostdev ||
      i.type === 'network' ||
      (i.type === 'direct' && i.mode === 'passthrough') ||
      (i.type === 'bridge' && vport === 'openvswitch');
    if (!carries) report(i.line, 'interface', `interface ${name} - vlan tag not supported for this connection type`);
    if (isHostdev && (i.vlan.trunk || i.vlan.tags.length > 1)) {
      report(i.line, 'interface', `interface ${name} - vlan trunking is not supported by SR-IOV network devices`);
    }
  }
  if (isHostdev && (i.virtualport?.type === 'openvswitch' || i.virtualport?.type === 'midonet')) {
    report(
      i.line,
      'interface',
      `interface ${name} - virtualport type ${i.virtualport.type} is not supported on interfaces of type ${i.type}`,
      'CONFIG_UNSUPPORTED',
    );
  }
  const g = i.guestAddress;
  if (g && g.type !== 'pci')
    report(i.line, 'interface', `interface ${name} - guest address type '${g.type}' is not supported, only 'pci'`);
  if (i.teaming?.type === 'persistent' && i.model !== 'virtio') {
    report(
      i.line,
      'interface',
      `interface ${name} - the persistent side of a teaming pair must have <model type='virtio'/>`,
    );
  }
  if (i.teaming?.type === 'transient' && i.type !== 'hostdev' && i.type !== 'network') {
    report(
      i.line,
      'interface',
      `interface ${name} - teaming transient device must be type='hostdev' or 'network', not '${i.type}'`,
    );
  }
  const sg = i.type === 'hostdev-hybrid' || i.type === 'network' ? i.standby?.guestAddress : undefined;
  if (sg && sg.type !== 'pci') {
    report(i.line, 'interface', `interface ${name} - the standby's guest address type '${sg.type}' is not 'pci'`);
  }
  if (i.type === 'hostdev-hybrid' && i.model !== undefined && i.model !== 'virtio') {
    report(
      i.line,
      'interface',
      `interface ${name} - the standby of a hostdev-hybrid interface is <model type='virtio'/> (failover needs virtio-net), not '${i.model}'`,
    );
  }
  if (i.type === 'hostdev-hybrid' && i.teaming) {
    report(
      i.line,
      'interface',
      `interface ${name} - hostdev-hybrid builds its own failover pair and takes no <teaming>`,
    );
  }
  if (isHostdev && i.targetDev !== undefined) {
    report(
      i.line,
      'interface',
      `interface ${name} - custom tap device path is not supported for network interfaces of type ${i.type}`,
    );
  }
}

/** A host PCI function can be given to the guest only once. */
function checkHostSources(def: DomainDef, report: Report): void {
  const sources = [
    ...def.devices.hostdevs.map((h) => ({ a: h.source.address, line: h.line, el: 'hostdev' })),
    ...def.devices.interfaces.flatMap((i) => {
      const source =
        i.type === 'hostdev' || i.type === 'hostdev-hybrid'
          ? i.source
          : i.type === 'network'
            ? i.actual?.source
            : undefined;
      return source ? [{ a: source.address, line: i.line, el: 'interface' }] : [];
    }),
  ];
  for (const { dev, key, first } of repeats(sources, (s) => formatPciAddress(s.a))) {
    report(
      dev.line,
      dev.el,
      `host PCI device ${key} is already used by another device${first === undefined ? '' : ` (line ${first})`}`,
    );
  }
}

interface Placed {
  readonly line?: number | undefined;
  /** The element name, for the report. */
  readonly el: string;
}

/** The devices whose key an earlier device already has, in document order (so a duplicate is
 *  reported at its second occurrence), each with the line of the first. */
function repeats<T extends Placed>(
  list: T[],
  key: (dev: T) => string | undefined,
): { dev: T; key: string; first: number | undefined }[] {
  const seen = new Map<string, number | undefined>();
  const found: { dev: T; key: string; first: number | undefined }[] = [];
  for (const dev of list.sort((a, b) => (a.line ?? 0) - (b.line ?? 0))) {
    const k = key(dev);
    if (k === undefined) continue;
    if (seen.has(k)) found.push({ dev, key: k, first: seen.get(k) });
    else seen.set(k, dev.line);
  }
  return found;
}

function checkGuestAddresses(def: DomainDef, report: Report): void {
  const d = def.devices;
  const all = [
    ...d.controllers.map((c) => ({ g: c.address, line: c.line, el: 'controller' })),
    ...d.interfaces.map((i) => ({ g: i.guestAddress, line: i.line, el: 'interface' })),
    ...allHostdevs(def).map((h) => ({ g: h.guestAddress, line: h.line, el: 'hostdev' })),
    ...d.serials.map((s) => ({ g: s.guestAddress, line: s.line, el: 'serial' })),
    ...typedDisks(d).map((k) => ({ g: k.guestAddress, line: k.line, el: 'disk' })),
    ...[...carriedDisks(d), ...(d.others ?? [])].map((o) => ({ g: o.guestAddress, line: o.xml.line, el: o.kind })),
  ];
  for (const { dev, key, first } of repeats(all, ({ g }) => (g?.type === 'pci' ? formatPciAddress(g) : undefined))) {
    report(
      dev.line,
      dev.el,
      `guest PCI address ${key} is already in use${first === undefined ? '' : ` by the device at line ${first}`}`,
    );
  }
}

function checkAliases(def: DomainDef, report: Report): void {
  const d = def.devices;
  const all = [
    ...d.interfaces.map((x) => ({ alias: x.alias, line: x.line, el: 'interface' })),
    ...allHostdevs(def).map((x) => ({ alias: x.alias, line: x.line, el: 'hostdev' })),
    ...d.controllers.map((x) => ({ alias: x.alias, line: x.line, el: 'controller' })),
    ...d.serials.map((x) => ({ alias: x.alias, line: x.line, el: 'serial' })),
    ...typedDisks(d).map((x) => ({ alias: x.alias, line: x.line, el: 'disk' })),
  ];
  for (const { dev, key, first } of repeats(all, (x) => x.alias)) {
    report(dev.line, dev.el, `alias '${key}' is already used by another device (line ${first ?? '?'})`);
  }
}

/** Disk names are unique (they name the guest's device and the alias); a cdrom needs a bus with
 *  removable media (libvirt: "disk device 'cdrom' does not support bus 'virtio'"). */
function checkDisks(def: DomainDef, report: Report): void {
  const disks = typedDisks(def.devices).map((d) => ({ ...d, el: 'disk' }));
  for (const d of disks) {
    if (d.device === 'cdrom' && d.target.bus === 'virtio') {
      report(d.line, 'disk', `disk ${d.target.dev}: a cdrom cannot be on bus 'virtio'; use sata or scsi`);
    }
  }
  for (const { dev, key, first } of repeats(disks, (d) => d.target.dev)) {
    report(dev.line, 'disk', `target dev '${key}' is already used by the disk at line ${first ?? '?'}`);
  }
}

function checkBootOrder(def: DomainDef, report: Report): void {
  const booting = [
    ...def.devices.interfaces.map((d) => ({ el: 'interface', order: d.bootOrder, line: d.line })),
    ...allHostdevs(def).map((d) => ({ el: 'hostdev', order: d.bootOrder, line: d.line })),
    ...typedDisks(def.devices).map((d) => ({ el: 'disk', order: d.bootOrder, line: d.line })),
  ].filter((d) => d.order !== undefined);
  if (def.os.bootDevs !== undefined && def.os.bootDevs.length > 0) {
    for (const d of booting)
      report(d.line, d.el, 'per-device boot elements cannot be used together with os/boot elements');
  }
  for (const { dev, key } of repeats(booting, (d) => String(d.order))) {
    report(dev.line, dev.el, `boot order ${key} is already used by another device`);
  }
}

/** Both sides of a virtio-net failover pair must exist and point at each other. */
function checkTeaming(def: DomainDef, report: Report): void {
  const persistent = new Map<string, InterfaceDef>();
  for (const i of def.devices.interfaces) {
    if (i.teaming?.type === 'persistent') {
      if (!i.alias?.startsWith('ua-')) {
        report(
          i.line,
          'interface',
          `interface ${ifaceName(i)} - the persistent side of a teaming pair needs a user alias (<alias name='ua-...'/>)`,
        );
      } else persistent.set(i.alias, i);
    }
  }
  const transient: { teaming: { persistent: string }; line?: number | undefined; el: string }[] = [];
  for (const i of def.devices.interfaces)
    if (i.teaming?.type === 'transient') transient.push({ teaming: i.teaming, line: i.line, el: 'interface' });
  for (const h of allHostdevs(def))
    if (h.teaming?.type === 'transient') transient.push({ teaming: h.teaming, line: h.line, el: 'hostdev' });
  const used = new Set<string>();
  for (const t of transient) {
    const p = t.teaming.persistent;
    if (!persistent.has(p))
      report(
        t.line,
        t.el,
        `teaming persistent='${p}' names no <interface> with <teaming type='persistent'/> and alias '${p}'`,
      );
    if (used.has(p)) report(t.line, t.el, `interface '${p}' is already the persistent side of another teaming pair`);
    used.add(p);
  }
}

/** Root ports go on pcie-root slots 2..0x1e (slot 1 is VGA's, 0x1f the ICH9 functions'), eight
 *  functions each: more than that cannot be placed (libvirt: pcie-root-port-too-many). */
const ROOT_PORT_CAPACITY = 29 * 8;

function checkControllers(def: DomainDef, report: Report): void {
  const seen = new Map<string, ControllerDef>();
  for (const c of def.devices.controllers) {
    const key = `${c.type}:${c.index}`;
    if (seen.has(key)) report(c.line, 'controller', `multiple controllers of type ${c.type} with index ${c.index}`);
    seen.set(key, c);
    if (c.type !== 'pci') continue;
    const root = c.model === 'pci-root' || c.model === 'pcie-root';
    if (c.index === 0 && !root)
      report(c.line, 'controller', `PCI controller 0 must be pci-root or pcie-root, not ${c.model ?? '?'}`);
    if (c.index !== 0 && root) report(c.line, 'controller', `a ${c.model ?? ''} controller must have index 0`);
    if (c.model === 'pcie-root' && def.os.machine !== undefined && !isQ35(def.os.machine)) {
      report(c.line, 'controller', `pcie-root needs a q35 machine, not '${def.os.machine}'`);
    }
    if (c.model === 'pci-root' && isQ35(def.os.machine))
      report(c.line, 'controller', 'a q35 machine has pcie-root, not pci-root');
  }
  const unplaced = def.devices.controllers.filter((c) => c.model === 'pcie-root-port' && c.address === undefined);
  const last = unplaced[ROOT_PORT_CAPACITY];
  if (last) {
    report(
      last.line,
      'controller',
      `a PCI slot is needed to connect a PCI controller model='pcie-root-port', but none is available (at most ${ROOT_PORT_CAPACITY} fit on pcie-root)`,
    );
  }
}
