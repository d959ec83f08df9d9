import { randomBytes } from 'node:crypto';
import { defaultDriveAddress } from './disk.ts';
import type { MacAddress } from '../mac.ts';
import type { CharDevDef, ControllerDef, DomainDef } from './types.ts';

export interface PostParseOptions {
  /** Source of random bytes for generated MACs; injected so tests are exact. */
  readonly randomBytes?: (n: number) => Uint8Array;
}

/**
 * Defaults, as libvirt fills them after parsing (virDomainDefPostParse and the QEMU driver's
 * part of it that does not depend on QEMU's capabilities). Pure: returns a new definition.
 */
export function postParseDomain(def: DomainDef, opts: PostParseOptions = {}): DomainDef {
  const rnd = opts.randomBytes ?? ((n: number): Uint8Array => randomBytes(n));
  const { devices, os } = def;
  const usesDeviceBoot = [...devices.interfaces, ...devices.hostdevs].some((d) => d.bootOrder !== undefined);
  const serials = devices.serials.map((s, i) => serialDefaults(s, i, def.os.arch));
  return {
    ...def,
    type: def.type ?? 'kvm',
    // libvirt: a balloon target of 0 or above the maximum means "all of it".
    currentMemoryKiB:
      def.currentMemoryKiB === undefined || def.currentMemoryKiB === 0 || def.currentMemoryKiB > def.memoryKiB
        ? def.memoryKiB
        : def.currentMemoryKiB,
    vcpuPlacement: def.vcpuPlacement ?? 'static',
    os:
      os.bootDevs === undefined && os.kernel === undefined && !usesDeviceBoot && !hasDiskBootOrder(def)
        ? { ...os, bootDevs: ['hd'] }
        : os,
    onPoweroff: def.onPoweroff ?? 'destroy',
    onReboot: def.onReboot ?? 'restart',
    onCrash: def.onCrash ?? 'destroy',
    devices: {
      ...devices,
      controllers: withPciRoot(devices.controllers, def.os.machine),
      interfaces: devices.interfaces.map((i) => (i.mac === undefined ? { ...i, mac: generateMac(rnd) } : i)),
      ...(devices.disks === undefined
        ? {}
        : {
            disks: devices.disks.map((k) => {
              if ('xml' in k) return k;
              const guestAddress = defaultDriveAddress(k);
              return guestAddress === undefined ? k : { ...k, guestAddress };
            }),
          }),
      serials,
      consoles: devices.consoles.length === 0 && serials[0] ? [consoleFor(serials[0])] : devices.consoles,
    },
  };
}

/** A typed disk's `<boot order>`, or one in a carried disk's XML. */
function hasDiskBootOrder(def: DomainDef): boolean {
  return (def.devices.disks ?? []).some((d) =>
    'xml' in d ? d.xml.children.some((c) => c.kind === 'element' && c.name === 'boot') : d.bootOrder !== undefined,
  );
}

export function isQ35(machine: string | undefined): boolean {
  return machine !== undefined && /^(pc-)?q35/.test(machine);
}

/** Every PCI guest needs its root bus as controller 0: pcie-root on q35, pci-root otherwise. */
function withPciRoot(controllers: readonly ControllerDef[], machine: string | undefined): readonly ControllerDef[] {
  if (controllers.some((c) => c.type === 'pci' && c.index === 0)) return controllers;
  const root: ControllerDef = { type: 'pci', index: 0, model: isQ35(machine) ? 'pcie-root' : 'pci-root' };
  return [...controllers, root];
}

/** libvirt's generated MACs are in QEMU's 52:54:00 range. */
function generateMac(rnd: (n: number) => Uint8Array): MacAddress {
  const b = rnd(3);
  const hex = [...b].map((x) => x.toString(16).padStart(2, '0'));
  return `52:54:00:${hex.join(':')}` as MacAddress;
}

function serialDefaults(s: CharDevDef, i: number, arch: string | undefined): CharDevDef {
  const x86 = arch === undefined || arch === 'x86_64' || arch === 'i686';
  const withPort = s.targetPort === undefined ? { ...s, targetPort: i } : s;
  if (!x86 || withPort.targetType !== undefined) return withPort;
  return { ...withPort, targetType: 'isa-serial', targetModel: withPort.targetModel ?? 'isa-serial' };
}

/** libvirt shows the first serial port again as the guest's console (virDomainDefAddConsoleCompat). */
function consoleFor(serial: CharDevDef): CharDevDef {
  const console: CharDevDef = { type: serial.type, targetType: 'serial', targetPort: 0 };
  return {
    ...console,
    ...(serial.path === undefined ? {} : { path: serial.path }),
    ...(serial.mode === undefined ? {} : { mode: serial.mode }),
    ...(serial.append === undefined ? {} : { append: serial.append }),
    ...(serial.alias === undefined ? {} : { alias: serial.alias }),
  };
}
