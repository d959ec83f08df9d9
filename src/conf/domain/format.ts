import type { FormatFlags } from '../format-flags.ts';
import { type OutElement, out, outText } from '../xml/tree.ts';
import { formatXml } from '../xml/writer.ts';
import { toOut } from './generic.ts';
import { diskOut } from './disk-format.ts';
import { charDevOut, controllerOut, hostdevOut, interfaceOut, otherOut } from './format-devices.ts';
import type { Devices, DomainDef, OsDef, OtherDeviceKind } from './types.ts';

/**
 * DomainDef -> XML text in libvirt's style and element order (virDomainDefFormatInternal).
 * Flags choose what is written; see format-flags.ts. With no flags: live.
 */
export function formatDomainXml(def: DomainDef, flags: FormatFlags = {}): string {
  return formatXml(domainOut(def, flags));
}

function domainOut(def: DomainDef, flags: FormatFlags = {}): OutElement {
  return out(
    'domain',
    [
      ['type', def.type ?? 'kvm'],
      ['id', flags.inactive || flags.migratable ? undefined : def.id],
    ],
    [
      outText('name', def.name),
      def.uuid !== undefined && outText('uuid', def.uuid),
      def.title !== undefined && outText('title', def.title),
      def.description !== undefined && outText('description', def.description),
      def.metadata && toOut(def.metadata),
      outText('memory', String(def.memoryKiB), [['unit', 'KiB']]),
      def.currentMemoryKiB !== undefined && outText('currentMemory', String(def.currentMemoryKiB), [['unit', 'KiB']]),
      def.memoryBacking && toOut(def.memoryBacking),
      outText('vcpu', String(def.vcpus), [
        ['placement', def.vcpuPlacement],
        ['cpuset', def.vcpuCpuset],
      ]),
      def.cputune && toOut(def.cputune),
      def.numatune && toOut(def.numatune),
      osOut(def.os),
      def.features && toOut(def.features),
      def.cpu && toOut(def.cpu),
      def.clock && toOut(def.clock),
      def.onPoweroff !== undefined && outText('on_poweroff', def.onPoweroff),
      def.onReboot !== undefined && outText('on_reboot', def.onReboot),
      def.onCrash !== undefined && outText('on_crash', def.onCrash),
      def.pm && toOut(def.pm),
      devicesOut(def.devices, flags),
    ],
  );
}

function osOut(os: OsDef): OutElement {
  return out(
    'os',
    [['firmware', os.firmware]],
    [
      outText('type', os.type, [
        ['arch', os.arch],
        ['machine', os.machine],
      ]),
      os.loader && toOut(os.loader),
      os.nvram && toOut(os.nvram),
      os.kernel !== undefined && outText('kernel', os.kernel),
      os.initrd !== undefined && outText('initrd', os.initrd),
      os.cmdline !== undefined && outText('cmdline', os.cmdline),
      ...(os.bootDevs ?? []).map((d) => out('boot', [['dev', d]])),
      os.bootMenu !== undefined && out('bootmenu', [['enable', os.bootMenu ? 'yes' : 'no']]),
    ],
  );
}

function devicesOut(d: Devices, flags: FormatFlags): OutElement {
  const others = (kind: OtherDeviceKind): OutElement[] => (d.others ?? []).filter((o) => o.kind === kind).map(otherOut);
  return out(
    'devices',
    [],
    [
      d.emulator !== undefined && outText('emulator', d.emulator),
      ...(d.disks ?? []).map((k) => ('xml' in k ? otherOut(k) : diskOut(k, flags))),
      ...d.controllers.map((c) => controllerOut(c, flags)),
      ...others('filesystem'),
      ...d.interfaces.map((i) => interfaceOut(i, flags)),
      ...d.serials.map((s) => charDevOut('serial', s, flags)),
      ...d.consoles.map((c) => charDevOut('console', c, flags)),
      ...others('channel'),
      ...others('input'),
      ...others('tpm'),
      ...others('graphics'),
      ...others('sound'),
      ...others('audio'),
      ...others('video'),
      ...d.hostdevs.map((h) => hostdevOut(h, flags)),
      ...(d.poolHostdevs ?? []).map((h) => hostdevOut(h, flags)),
      ...others('redirdev'),
      ...others('hub'),
      ...others('watchdog'),
      ...others('memballoon'),
      ...others('rng'),
      ...others('panic'),
      ...others('iommu'),
      ...others('vsock'),
    ],
  );
}
