import { carriedDisks, typedDisks } from '../conf/domain/disk.ts';
import type {
  ControllerDef,
  DiskDef,
  DomainDef,
  GuestAddress,
  HostdevDef,
  InterfaceDef,
  OtherDeviceDef,
  StandbyDef,
} from '../conf/domain/types.ts';
import { PassthruError } from '../conf/error.ts';
import { formatPciAddress } from '../conf/pci-address.ts';
import { hostDevices, isHostdevInterface } from '../conf/domain/hostdevs.ts';
import { standbyOf, withStandby } from '../conf/domain/hybrid.ts';

/**
 * Guest PCI addresses as libvirt plans them (qemuDomainAssignPCIAddresses, domain_addr.c), pure.
 *
 * q35: every endpoint without an address gets a pcie-root-port of its own (so it can be hot-
 * unplugged) and sits at slot 0 of it; `spareRootPorts` (libvirt: one) are kept free for a later
 * hot-plug, counting the free hot-pluggable ports the definition already has. Root
 * ports without an address are packed eight to a slot of pcie.0 from slot 1 on (slot 1 only when
 * no video wants it; 0x1f is the ICH9 LPC/SATA/SMBus), function 0 then says multifunction.
 * i440fx (machine 'pc'): endpoints take the next free slot of pci.0 from slot 2 (slot 1 is PIIX3).
 *
 * Explicit addresses are kept; two devices on one address, or an address no controller provides,
 * is an XML_INVALID error naming both devices. `unassigned` devices get none.
 */
export interface AddressOptions {
  /** Free hot-pluggable root ports a q35 definition keeps for hot-plug (default 1, libvirt's). */
  readonly spareRootPorts?: number;
}

export function assignAddresses(def: DomainDef, opts: AddressOptions = {}): DomainDef {
  const spares = opts.spareRootPorts ?? 1;
  const family = machineFamily(def);
  const controllers = withRoot(def.devices.controllers, family);
  if (family === 'q35') addMissingBuses(controllers, def, family);
  const rootPorts = (): ControllerDef[] =>
    controllers.filter((c) => c.type === 'pci' && c.model === 'pcie-root-port').sort((a, b) => a.index - b.index);

  // 1. Reserve what is fixed (reserveFixed).
  const plan = reserveFixed(def, controllers, family);
  const firstSlot = family === 'q35' ? 1 : 2;

  // 2. Endpoints that want an address, in libvirt's order: QEMU-backed interfaces (with the
  //    virtio standbys of hybrid interfaces), then every hostdev (those of <interface
  //    type='hostdev'> first, as libvirt parses them first), then a virtio memory balloon.
  const standbys = new Map<InterfaceDef, StandbyDef>();
  for (const i of def.devices.interfaces) {
    const s = standbyOf(i);
    if (s) standbys.set(i, s);
  }
  const wanting = endpointsWantingAddress(def, controllers, [...standbys.values()]);

  // 3. q35: enough root ports for them, plus a spare, at new controller indexes.
  if (family === 'q35') {
    const free = rootPorts().filter(
      (c) => c.target?.hotplug !== false && !plan.isUsed({ bus: c.index, slot: 0, function: 0 }),
    );
    let next = Math.max(...controllers.map((c) => (c.type === 'pci' ? c.index : 0))) + 1;
    for (let n = Math.max(0, wanting.length + spares - free.length); n > 0; n--) {
      controllers.push({ type: 'pci', index: next++, model: 'pcie-root-port' });
    }
  }

  sortPciByIndex(controllers);

  // 4. PCI controllers without an address: root ports packed into multifunction slots of bus 0.
  let aggregateSlot: number | undefined;
  for (const [i, c] of controllers.entries()) {
    if (c.type !== 'pci' || c.index === 0 || c.address !== undefined) continue;
    const owner = `PCI controller ${c.index} (${c.model ?? 'pci'})`;
    let at: Slot;
    if (c.model === 'pcie-root-port') {
      const fn = aggregateSlot === undefined ? undefined : plan.freeFunction(0, aggregateSlot);
      if (aggregateSlot !== undefined && fn !== undefined) at = { bus: 0, slot: aggregateSlot, function: fn };
      else at = { bus: 0, slot: plan.freeSlot(0, firstSlot, owner), function: 0 };
      aggregateSlot = at.slot;
    } else {
      at = { bus: 0, slot: plan.freeSlot(0, firstSlot, owner), function: 0 };
    }
    plan.reserve(at, owner, false);
    controllers[i] = { ...c, address: pciAddress(at) };
  }

  // 5. Endpoints: a root port each (q35) or a slot of pci.0 (i440fx).
  const placed = new Map<object, GuestAddress>();
  for (const dev of wanting) {
    const owner = describe(dev);
    let at: Slot;
    if (family === 'q35') {
      const port = rootPorts().find(
        (c) => c.target?.hotplug !== false && !plan.isUsed({ bus: c.index, slot: 0, function: 0 }),
      );
      if (port === undefined) throw new PassthruError('INTERNAL', `no free pcie-root-port left for ${owner}`);
      at = { bus: port.index, slot: 0, function: 0 };
    } else {
      at = { bus: 0, slot: plan.freeSlot(0, firstSlot, owner), function: 0 };
    }
    plan.reserve(at, owner, false);
    placed.set(dev, pciAddress(at));
  }

  // 6. Function 0 of a slot with other functions in use says so (virDomainPCIAddressSetAllMulti).
  const multi = <T extends { readonly guestAddress?: GuestAddress }>(d: T): T => {
    const a = placed.get(d) ?? d.guestAddress;
    if (a === undefined) return d;
    return { ...d, guestAddress: withMultifunction(a, plan) };
  };
  return {
    ...def,
    devices: {
      ...def.devices,
      controllers: controllers.map((c) => {
        const address = placed.get(c) ?? c.address;
        return address === undefined ? c : { ...c, address: withMultifunction(address, plan) };
      }),
      interfaces: def.devices.interfaces.map((i) => {
        const s = standbys.get(i);
        return s ? withStandby(multi(i), multi(s)) : multi(i);
      }),
      ...(def.devices.disks === undefined ? {} : { disks: def.devices.disks.map((k) => ('xml' in k ? k : multi(k))) }),
      hostdevs: def.devices.hostdevs.map(multi),
      ...(def.devices.others === undefined ? {} : { others: def.devices.others.map(multi) }),
    },
  };
}

/**
 * The guest PCI functions a definition holds before anything is placed: the chipset's own slots,
 * then every explicit address. The primary video, when there is one without an address, gets its
 * traditional slot first (00:01.0 on q35, 00:02.0 on i440fx); without one libvirt puts root ports
 * at 00:01 too (pcie-root-port-model-generic.args).
 */
function reserveFixed(def: DomainDef, controllers: readonly ControllerDef[], family: MachineFamily): SlotMap {
  const plan = new SlotMap();
  const videoWithoutAddress = (def.devices.others ?? []).some(
    (o) => o.kind === 'video' && o.guestAddress === undefined,
  );
  plan.reserve({ bus: 0, slot: 0, function: 0 }, 'the host bridge', true);
  if (family === 'q35') {
    plan.reserve({ bus: 0, slot: 0x1f, function: 0 }, 'the ICH9 LPC/SATA/SMBus functions', true);
    if (videoWithoutAddress) plan.reserve({ bus: 0, slot: 1, function: 0 }, 'the primary video', true);
  } else {
    plan.reserve({ bus: 0, slot: 1, function: 0 }, 'the PIIX3 functions', true);
    if (videoWithoutAddress) plan.reserve({ bus: 0, slot: 2, function: 0 }, 'the primary video', true);
  }
  for (const { address, owner, line } of explicitAddresses(def, controllers, family)) {
    checkBus(address, owner, controllers, line);
    plan.reserve(address, owner, false, line);
  }
  return plan;
}

/** What a live definition occupies, for hot-plug: the same reservations the start planned with,
 *  so a hot-plugged device never lands on a disk's, the video's or the chipset's place. */
export function occupiedSlots(live: DomainDef): Pick<SlotMap, 'isUsed' | 'functionsUsed'> {
  const family = machineFamily(live);
  return reserveFixed(live, withRoot(live.devices.controllers, family), family);
}

export type MachineFamily = 'q35' | 'i440fx';

/** q35 or i440fx. Without a machine type the root controller decides (conf's postParse adds
 *  pci-root then, as libvirt, whose default x86 machine is 'pc'); with neither, q35. */
export function machineFamily(def: DomainDef): MachineFamily {
  const m = def.os.machine;
  if (m === undefined) {
    const root = def.devices.controllers.find((c) => c.type === 'pci' && c.index === 0);
    return root?.model === 'pci-root' ? 'i440fx' : 'q35';
  }
  if (m === 'q35' || m.startsWith('pc-q35')) return 'q35';
  if (m === 'pc' || m.startsWith('pc-i440fx') || m.startsWith('pc-')) return 'i440fx';
  throw new PassthruError('CONFIG_UNSUPPORTED', `machine type '${m}' is not supported; use q35 (or pc)`, {
    hint: "write <type arch='x86_64' machine='q35'>hvm</type>",
    ...(def.os.line === undefined ? {} : { line: def.os.line }),
  });
}

interface Slot {
  readonly bus: number;
  readonly slot: number;
  readonly function: number;
}

type Endpoint = InterfaceDef | HostdevDef | DiskDef | ControllerDef | OtherDeviceDef | StandbyDef;

/** In libvirt's order (qemuDomainAssignDevicePCISlots): QEMU-backed NICs, the controllers that
 *  are PCI devices of their own (virtio-scsi), virtio disks, then host devices. */
function endpointsWantingAddress(
  def: DomainDef,
  controllers: readonly ControllerDef[],
  standbys: readonly StandbyDef[],
): Endpoint[] {
  const ifaces = def.devices.interfaces;
  return [
    ...ifaces.filter((i) => !isHostdevInterface(i)),
    ...standbys,
    ...controllers.filter(isVirtioScsi),
    ...typedDisks(def.devices).filter((k) => k.target.bus === 'virtio'),
    ...hostDevices(def)
      .filter((h) => h.assigned)
      .map((h) => h.def),
    ...(def.devices.others ?? []).filter(isVirtioBalloon),
  ].filter((d) => ('index' in d ? d.address : d.guestAddress) === undefined);
}

/** A SCSI controller is a virtio-scsi PCI device unless the definition names another model. */
export function isVirtioScsi(c: ControllerDef): boolean {
  return c.type === 'scsi' && (c.model === undefined || c.model === 'virtio-scsi');
}

/** A virtio memballoon is a PCI device; `model='none'` (what passthrud runs) is none. */
function isVirtioBalloon(o: OtherDeviceDef): boolean {
  return o.kind === 'memballoon' && (o.xml.attrs.get('model') ?? '').startsWith('virtio');
}

function describe(dev: Endpoint): string {
  if ('kind' in dev) return dev.kind;
  if (dev.alias !== undefined) return dev.alias;
  if (!('type' in dev)) return 'the standby of a hostdev-hybrid interface';
  if ('target' in dev && 'device' in dev) return `disk ${dev.target.dev}`;
  if ('index' in dev) return `${dev.type} controller ${dev.index}`;
  if (dev.type === 'pci') return `hostdev ${formatPciAddress(dev.source.address)}`;
  if (dev.type === 'hostdev' || dev.type === 'hostdev-hybrid') {
    return `interface ${dev.mac ?? formatPciAddress(dev.source.address)}`;
  }
  return `interface ${dev.mac ?? dev.type}`;
}

function withRoot(controllers: readonly ControllerDef[], family: MachineFamily): ControllerDef[] {
  const out = [...controllers];
  const model = family === 'q35' ? 'pcie-root' : 'pci-root';
  const root = out.find((c) => c.type === 'pci' && c.index === 0);
  if (root === undefined) out.push({ type: 'pci', index: 0, model });
  else if (root.model !== model) {
    throw new PassthruError(
      'XML_INVALID',
      `PCI controller 0 is a '${root.model ?? '?'}', but a ${family} machine has a '${model}'`,
      root.line === undefined ? {} : { line: root.line },
    );
  }
  return out;
}

/** libvirt adds the controllers that explicit addresses point at; on q35 those are root ports. */
function addMissingBuses(controllers: ControllerDef[], def: DomainDef, family: MachineFamily): void {
  const have = new Set(controllers.filter((c) => c.type === 'pci').map((c) => c.index));
  const wanted = explicitAddresses(def, controllers, family).map((e) => e.address.bus);
  const max = Math.max(0, ...wanted);
  for (let i = 1; i <= max; i++) {
    if (!have.has(i)) controllers.push({ type: 'pci', index: i, model: 'pcie-root-port' });
  }
}

interface Explicit {
  readonly address: Slot & { readonly domain: number };
  readonly owner: string;
  readonly line: number | undefined;
}

function explicitAddresses(def: DomainDef, controllers: readonly ControllerDef[], family: MachineFamily): Explicit[] {
  const out: Explicit[] = [];
  const add = (a: GuestAddress | undefined, owner: string, line: number | undefined): void => {
    if (a?.type === 'pci') out.push({ address: a, owner, line });
  };
  for (const c of controllers) {
    if (!isChipsetFunction(c, family))
      add(c.address, `${c.type === 'pci' ? 'PCI' : c.type} controller ${c.index}`, c.line);
  }
  for (const i of def.devices.interfaces) {
    add(i.guestAddress, describe(i), i.line);
    const s = standbyOf(i);
    if (s) add(s.guestAddress, s.alias ?? `the standby of ${describe(i)}`, s.line ?? i.line);
  }
  for (const h of def.devices.hostdevs) add(h.guestAddress, describe(h), h.line);
  for (const k of typedDisks(def.devices)) add(k.guestAddress, describe(k), k.line);
  for (const o of [...carriedDisks(def.devices), ...(def.devices.others ?? [])])
    add(o.guestAddress, o.kind, o.xml.line);
  for (const s of [...def.devices.serials, ...def.devices.consoles]) add(s.guestAddress, s.alias ?? 'serial', s.line);
  return out;
}

/**
 * The built-in controllers of the chipset, at the addresses libvirt writes for them: PIIX3's IDE
 * (00:01.1) and UHCI USB (00:01.2) on i440fx, ICH9's AHCI SATA (00:1f.2) on q35. They are functions
 * of the slot reserved for the chipset, not devices to place, so a definition libvirt dumped can
 * be started as it is.
 */
function isChipsetFunction(c: ControllerDef, family: MachineFamily): boolean {
  const a = c.address;
  if (a?.type !== 'pci' || a.domain !== 0 || a.bus !== 0) return false;
  if (family === 'q35') return c.type === 'sata' && a.slot === 0x1f && a.function === 2;
  if (c.type === 'ide') return a.slot === 1 && a.function === 1;
  return c.type === 'usb' && (c.model ?? 'piix3-uhci') === 'piix3-uhci' && a.slot === 1 && a.function === 2;
}

function checkBus(
  a: Slot & { readonly domain: number },
  owner: string,
  controllers: readonly ControllerDef[],
  line: number | undefined,
): void {
  const text = formatPciAddress(a);
  const at = line === undefined ? {} : { line };
  if (a.domain !== 0) {
    throw new PassthruError(
      'CONFIG_UNSUPPORTED',
      `guest PCI address ${text} of ${owner}${lineText(line)}: only PCI domain 0 exists in the guest`,
      at,
    );
  }
  const bus = controllers.find((c) => c.type === 'pci' && c.index === a.bus);
  if (bus === undefined) {
    throw new PassthruError(
      'XML_INVALID',
      `guest PCI address ${text} of ${owner}${lineText(line)} is on bus ${a.bus}, but no PCI controller has index ${a.bus}`,
      at,
    );
  }
  if ((bus.model === 'pcie-root-port' || bus.model === 'pcie-switch-downstream-port') && a.slot !== 0) {
    throw new PassthruError(
      'XML_INVALID',
      `guest PCI address ${text} of ${owner}${lineText(line)}: a ${bus.model} has only slot 0`,
      at,
    );
  }
}

function lineText(line: number | undefined): string {
  return line === undefined ? '' : ` (line ${line})`;
}

/** PCI controllers in index order, in the places PCI controllers hold; other types stay put. */
function sortPciByIndex(controllers: ControllerDef[]): void {
  const places = controllers.flatMap((c, i) => (c.type === 'pci' ? [i] : []));
  const pci = places.map((i) => controllers[i]).filter((c) => c !== undefined);
  pci.sort((a, b) => a.index - b.index);
  places.forEach((place, k) => {
    const c = pci[k];
    if (c) controllers[place] = c;
  });
}

function pciAddress(at: Slot): GuestAddress {
  return { type: 'pci', domain: 0, bus: at.bus, slot: at.slot, function: at.function };
}

function withMultifunction(a: GuestAddress, plan: SlotMap): GuestAddress {
  if (a.type !== 'pci' || a.function !== 0 || a.multifunction !== undefined) return a;
  return plan.functionsUsed(a.bus, a.slot) > 1 ? { ...a, multifunction: true } : a;
}

/** Which (bus, slot, function) is taken, and by whom. A reserved slot takes all 8 functions. */
class SlotMap {
  private readonly owners = new Map<string, string>();

  private static key(s: Slot): string {
    return `${s.bus}:${s.slot}:${s.function}`;
  }

  isUsed(s: Slot): boolean {
    return this.owners.has(SlotMap.key(s));
  }

  reserve(s: Slot, owner: string, wholeSlot: boolean, line?: number): void {
    const fns = wholeSlot ? [0, 1, 2, 3, 4, 5, 6, 7] : [s.function];
    for (const f of fns) {
      const k = SlotMap.key({ ...s, function: f });
      const holder = this.owners.get(k);
      if (holder !== undefined) {
        const text = formatPciAddress({ domain: 0, bus: s.bus, slot: s.slot, function: f });
        throw new PassthruError(
          'XML_INVALID',
          `guest PCI address ${text} of ${owner}${lineText(line)} is already in use by ${holder}`,
          line === undefined ? {} : { line },
        );
      }
      this.owners.set(k, owner);
    }
  }

  functionsUsed(bus: number, slot: number): number {
    let n = 0;
    for (let f = 0; f < 8; f++) if (this.isUsed({ bus, slot, function: f })) n++;
    return n;
  }

  freeFunction(bus: number, slot: number): number | undefined {
    for (let f = 0; f < 8; f++) if (!this.isUsed({ bus, slot, function: f })) return f;
    return undefined;
  }

  freeSlot(bus: number, from: number, owner: string): number {
    for (let s = from; s < 32; s++) if (this.functionsUsed(bus, s) === 0) return s;
    throw new PassthruError('CONFIG_UNSUPPORTED', `no free PCI slot left on bus ${bus} for ${owner}`);
  }
}
