import type { ControllerDef, DomainDef, GuestAddress, OtherDeviceDef } from '../conf/domain/types.ts';
import { childElements, type XmlElement } from '../conf/xml/tree.ts';
import { withScsiControllers } from './disk-props.ts';
import { type AddressOptions, assignAddresses, type MachineFamily, machineFamily } from './addresses.ts';

export type DefineOptions = AddressOptions;

/**
 * What libvirt's QEMU driver writes into a definition at `define` (qemuDomainDefPostParse and
 * qemuDomainAssignAddresses), so that the persistent definition holds every guest address from
 * then on and a device added later never moves one that was there: the chipset's implicit
 * controllers, ps2 input and a `none` audio backend, `<clock offset='utc'/>`, a guest PCI address
 * for every PCI device, root ports enough for them plus the spares for hot-plug, and each root
 * port's QEMU model, chassis and port. Pure; running it on its own output changes nothing.
 *
 * What libvirt adds that this does not (and why) is in docs/conf-differences.md.
 */
export function completeDefinition(def: DomainDef, opts: DefineOptions = {}): DomainDef {
  const family = machineFamily(def);
  const implicit = withImplicitDevices(withScsiControllers(def), family);
  return withRootPortTargets(assignAddresses(implicit, opts));
}

function withImplicitDevices(def: DomainDef, family: MachineFamily): DomainDef {
  const others = [...(def.devices.others ?? [])];
  const has = (kind: OtherDeviceDef['kind'], attrs: Record<string, string> = {}): boolean =>
    others.some((o) => o.kind === kind && Object.entries(attrs).every(([k, v]) => o.xml.attrs.get(k) === v));
  // virDomainDefAddImplicitDevices: an x86 PC has an i8042, whose mouse and keyboard always exist.
  if (isX86(def)) {
    if (!has('input', { type: 'mouse', bus: 'ps2' })) others.push(carried('input', { type: 'mouse', bus: 'ps2' }));
    if (!has('input', { type: 'keyboard', bus: 'ps2' }))
      others.push(carried('input', { type: 'keyboard', bus: 'ps2' }));
  }
  // qemuDomainDefAddDefaultAudioBackend: no sound card and no display, so no host audio at all.
  if (!has('audio') && !has('graphics') && !has('sound')) others.push(carried('audio', { id: '1', type: 'none' }));
  return {
    ...def,
    ...(def.clock === undefined ? { clock: element('clock', { offset: 'utc' }) } : {}),
    devices: { ...def.devices, controllers: withChipsetControllers(def, family), others },
  };
}

/**
 * The controllers built into the chipset, at their fixed functions: PIIX3's IDE (00:01.1) and
 * UHCI USB (00:01.2) on i440fx, ICH9's AHCI (00:1f.2) on q35. libvirt adds the AHCI on q35 and
 * the IDE controller an IDE disk needs, after the controllers there are (virDomainControllerInsert
 * appends a new type). A USB controller is never added: passthrud does not run one (see
 * docs/conf-differences.md); one that is written gets its chipset address.
 */
function withChipsetControllers(def: DomainDef, family: MachineFamily): ControllerDef[] {
  const ideDisk = (def.devices.disks ?? []).some((d) =>
    'xml' in d
      ? childElements(d.xml).some((c) => c.name === 'target' && c.attrs.get('bus') === 'ide')
      : d.target.bus === 'ide',
  );
  const fixed: { type: ControllerDef['type']; model?: string; slot: number; fn: number; add: boolean }[] =
    family === 'q35'
      ? [{ type: 'sata', slot: 0x1f, fn: 2, add: true }]
      : [
          { type: 'usb', model: 'piix3-uhci', slot: 1, fn: 2, add: false },
          { type: 'ide', slot: 1, fn: 1, add: ideDisk },
        ];
  const out = [...def.devices.controllers];
  for (const f of fixed) {
    const at: GuestAddress = { type: 'pci', domain: 0, bus: 0, slot: f.slot, function: f.fn };
    const i = out.findIndex((c) => c.type === f.type && c.index === 0);
    const c = out[i];
    if (c === undefined) {
      if (f.add && !out.some((o) => o.type === f.type)) out.push({ type: f.type, index: 0, address: at });
    } else if (c.address === undefined && (c.model === undefined || c.model === f.model)) {
      out[i] = { ...c, address: at };
    }
  }
  return out;
}

/** A root port's QEMU device, chassis (its index) and port (slot << 3 | function on pcie.0),
 *  as libvirt writes them once the port has its address (qemuDomainPCIControllerSetDefaults). */
function withRootPortTargets(def: DomainDef): DomainDef {
  const controllers = def.devices.controllers.map((c) => {
    if (c.type !== 'pci' || c.model !== 'pcie-root-port' || c.address?.type !== 'pci') return c;
    const a = c.address;
    return {
      ...c,
      modelName: c.modelName ?? 'pcie-root-port',
      target: {
        ...c.target,
        chassis: c.target?.chassis ?? c.index,
        port: c.target?.port ?? (a.slot << 3) | a.function,
      },
    };
  });
  return { ...def, devices: { ...def.devices, controllers } };
}

function isX86(def: DomainDef): boolean {
  const arch = def.os.arch;
  return arch === undefined || arch === 'x86_64' || arch === 'i686';
}

function carried(kind: OtherDeviceDef['kind'], attrs: Record<string, string>): OtherDeviceDef {
  return { kind, xml: element(kind, attrs) };
}

function element(name: string, attrs: Record<string, string>): XmlElement {
  return { kind: 'element', name, attrs: new Map(Object.entries(attrs)), children: [], line: 0, column: 0 };
}
