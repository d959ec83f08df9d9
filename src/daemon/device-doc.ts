import { formatDomainXml } from '../conf/domain/format.ts';
import { parseDomainXml } from '../conf/domain/parse.ts';
import { readDomainXml } from '../conf/domain/read.ts';
import type { DomainDef, HostdevDef, InterfaceDef } from '../conf/domain/types.ts';
import { PassthruError } from '../conf/error.ts';
import { formatPciAddress, type PciAddress } from '../conf/pci-address.ts';
import type { PluggedDevice } from '../qemu/hotplug.ts';

/**
 * A device document, as attach-device and detach-device take it: one `<hostdev>` or
 * `<interface>`, or several inside `<devices>` (the functions of one multifunction card go
 * together). Lines in errors are the document's own.
 */
function inner(xml: string): string {
  const text = xml.replace(/^\s*<\?xml[^>]*\?>/, '').trim();
  const m = /^<devices\s*>([\s\S]*)<\/devices>$/.exec(text);
  return m?.[1] ?? text;
}

/**
 * The definition with the document's devices added, read and validated as a whole (duplicate
 * host devices, guest addresses, teaming partners are checked against what is there). `live`:
 * the base is a live definition (its aliases are kept).
 */
export function withDocument(base: DomainDef, xml: string, live: boolean): DomainDef {
  // A live base in its status form: a network interface keeps its network and the VF it got
  // (the live form would show it as a plain hostdev interface).
  const doc = formatDomainXml(base, live ? { status: true } : { inactive: true });
  const at = doc.lastIndexOf('</devices>');
  const head = doc.slice(0, at);
  const offset = head.split('\n').length - 1;
  let def: DomainDef;
  try {
    def = readDomainXml(`${head}${inner(xml)}\n  ${doc.slice(at)}`, 'device XML');
  } catch (err) {
    throw located(err, offset);
  }
  const grew = (k: 'disks' | 'others' | 'controllers' | 'serials' | 'consoles' | 'poolHostdevs'): boolean =>
    (def.devices[k]?.length ?? 0) !== (base.devices[k]?.length ?? 0);
  if (
    grew('disks') ||
    grew('others') ||
    grew('controllers') ||
    grew('serials') ||
    grew('consoles') ||
    grew('poolHostdevs')
  ) {
    throw new PassthruError('CONFIG_UNSUPPORTED', 'only <hostdev> and <interface> devices can be attached or detached');
  }
  if (
    def.devices.interfaces.length + def.devices.hostdevs.length ===
    base.devices.interfaces.length + base.devices.hostdevs.length
  ) {
    throw new PassthruError('INVALID_ARG', 'the device XML names no <hostdev> or <interface>');
  }
  return def;
}

/** The devices a detach document names, found in `def` (by host PCI address, or by MAC for an
 *  interface QEMU backs). A device the domain does not have is NO_DEVICE, named as written. */
export function findDocumentDevices(def: DomainDef, xml: string): PluggedDevice[] {
  const skeleton = `<domain type='kvm'><name>d</name><memory>1</memory><os><type>hvm</type></os><devices>${inner(xml)}</devices></domain>`;
  let doc: DomainDef;
  try {
    doc = parseDomainXml(skeleton, 'device XML');
  } catch (err) {
    throw located(err, 0);
  }
  const wanted: PluggedDevice[] = [...doc.devices.interfaces, ...doc.devices.hostdevs];
  if (wanted.length === 0) throw new PassthruError('INVALID_ARG', 'the device XML names no <hostdev> or <interface>');
  const all: PluggedDevice[] = [...def.devices.interfaces, ...def.devices.hostdevs];
  return wanted.map((w) => {
    const found = all.find((d) => sameDevice(d, w));
    if (found === undefined) {
      throw new PassthruError('NO_DEVICE', `domain ${def.name} has no ${describeDevice(w)}`);
    }
    return found;
  });
}

/** The host PCI function behind a device, if it has one: a network interface's is the VF its
 *  network gave it (the live definition's `<actual>`). */
export function hostAddressOf(d: PluggedDevice): PciAddress | undefined {
  if ('mode' in d && d.type === 'pci') return d.source.address;
  if (d.type === 'hostdev' || d.type === 'hostdev-hybrid') return d.source.address;
  if (d.type === 'network') return d.actual?.source.address;
  return undefined;
}

export function describeDevice(d: PluggedDevice): string {
  const host = hostAddressOf(d);
  if ('mode' in d && d.type === 'pci') return `hostdev with host PCI device ${host ? formatPciAddress(host) : '?'}`;
  const iface = d;
  return `interface${iface.mac ? ` with MAC ${iface.mac}` : ''}${host ? ` on host PCI device ${formatPciAddress(host)}` : ''}`;
}

function sameDevice(have: PluggedDevice, want: PluggedDevice): boolean {
  const a = hostAddressOf(have);
  const b = hostAddressOf(want);
  // A <hostdev> naming the VF of an interface (type='hostdev', or a network's VF) stands for the
  // interface, as in libvirt (a hostdev with a parent net is detached through its net): its VF
  // is reset, its port profile disassociated, and a network VF goes back to its pool.
  const redirected = isHostdevElement(want) && !isHostdevElement(have);
  if (isHostdevElement(have) !== isHostdevElement(want) && !redirected) return false;
  if (b !== undefined) return a !== undefined && formatPciAddress(a) === formatPciAddress(b);
  const mac = (want as InterfaceDef).mac;
  return mac !== undefined && (have as InterfaceDef).mac === mac;
}

function isHostdevElement(d: PluggedDevice): d is HostdevDef {
  return 'mode' in d && d.type === 'pci';
}

/** Errors of the combined document point at the device document's own lines. */
function located(err: unknown, offset: number): unknown {
  if (!(err instanceof PassthruError) || err.line === undefined || offset === 0) return err;
  const line = err.line - offset;
  return new PassthruError(err.code, err.message.replace(`line ${err.line}`, `line ${line}`), {
    line,
    ...(err.hint === undefined ? {} : { hint: err.hint }),
    ...(err.column === undefined ? {} : { column: err.column }),
  });
}
