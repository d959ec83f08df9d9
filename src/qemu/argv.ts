import { typedDisks } from '../conf/domain/disk.ts';
import { hostDevices, isHostdevInterface } from '../conf/domain/hostdevs.ts';
import { expandHybrids } from '../conf/domain/hybrid.ts';
import { readTuning, type Tuning } from '../conf/domain/tuning.ts';
import type { CharDevDef, DomainDef } from '../conf/domain/types.ts';
import { PassthruError } from '../conf/error.ts';
import { formatPciAddress } from '../conf/pci-address.ts';
import type { DevicePresentation } from '../host/types.ts';
import type { Accel } from './accel.ts';
import { isVirtioScsi, machineFamily } from './addresses.ts';
import {
  type BusAliases,
  busAliases,
  type DeviceProps,
  formatDeviceJson,
  hostdevProps,
  type NicBackend,
  netdevProps,
  nicProps,
  rootPortProps,
  serialProps,
} from './device-props.ts';
import { blockdevArgs, diskBootIndexes, diskDeviceProps, scsiControllerProps } from './disk-props.ts';
import { iommuProps, splitIrqchip } from './iommu.ts';
import { type MemoryBackendPlan, memoryBackendProps, RAM_BACKEND_ID } from './memory-props.ts';

export interface ArgvContext {
  readonly accel: Accel;
  /** QMP listens here (a unix socket QEMU creates). */
  readonly qmpSocket: string;
  /** Where the guest's serial console goes when the definition does not name a file. */
  readonly consoleLog: string;
  /** Instead of consoleLog: a unix socket QEMU serves the console on (the daemon is its client,
   *  keeps the log and lets `passthru console` attach). */
  readonly consoleSocket?: string;
  readonly pidfile: string;
  /** How each host device is given to QEMU, by device alias (hostdevN); the host decides. */
  readonly hostDevices: ReadonlyMap<string, DevicePresentation>;
  /** -S: the vCPUs wait for QMP `cont`, so devices can be checked first (default true, as libvirt). */
  readonly startPaused?: boolean;
  /** A migration destination: `-incoming defer`, the address is given later (migration.ts). */
  readonly incoming?: boolean;
  /** The host side of each bridge and direct interface, by interface alias (netN). */
  readonly nicBackends?: ReadonlyMap<string, NicBackend>;
  /** The guest RAM's backend (hugepages, NUMA policy); absent: QEMU's anonymous memory. */
  readonly memory?: MemoryBackendPlan;
}

/**
 * The QEMU command line (without the binary) for a live definition (prepareLiveDef's output).
 * Pure. Options come in libvirt's order; devices are `-device` JSON, as libvirt gives QEMU >= 6.
 */
export function buildArgv(live: DomainDef, ctx: ArgvContext): string[] {
  // A hostdev-hybrid interface is run as the failover pair it stands for (conf/domain/hybrid.ts).
  const def = expandHybrids(live);
  const buses = busAliases(def);
  const a: string[] = ['-name', `guest=${optValue(def.name)},debug-threads=on`];
  if (ctx.startPaused ?? true) a.push('-S');
  const machine = def.os.machine ?? (machineFamily(def) === 'q35' ? 'q35' : 'pc');
  const backend = ctx.memory ? `,memory-backend=${RAM_BACKEND_ID}` : '';
  const irqchip = splitIrqchip(def) ? ',kernel_irqchip=split' : '';
  a.push('-machine', `${machine},usb=off${irqchip},dump-guest-core=off${backend}`);
  a.push('-accel', ctx.accel);
  const tuning = readTuning(def);
  a.push('-cpu', cpuArg(tuning, ctx.accel));
  a.push('-m', String(Math.ceil(def.memoryKiB / 1024)));
  if (ctx.memory) a.push('-object', JSON.stringify(memoryBackendProps(ctx.memory, def.memoryKiB)));
  a.push('-smp', smpArg(def.vcpus, tuning));
  if (def.uuid !== undefined) a.push('-uuid', def.uuid);
  a.push('-display', 'none', '-no-user-config', '-nodefaults');
  a.push('-chardev', `socket,id=charmonitor,path=${optValue(ctx.qmpSocket)},server=on,wait=off`);
  a.push('-mon', 'chardev=charmonitor,id=monitor,mode=control');
  a.push('-pidfile', ctx.pidfile);
  if (def.os.kernel !== undefined) a.push('-kernel', def.os.kernel);
  if (def.os.initrd !== undefined) a.push('-initrd', def.os.initrd);
  if (def.os.cmdline !== undefined) a.push('-append', def.os.cmdline);

  const vfio = [...ctx.hostDevices.values()].some((p) => p.kind === 'vfio');
  const iommu = iommuProps(def, machineFamily(def) === 'q35', vfio);
  if (iommu) device(a, iommu);
  for (const c of def.devices.controllers) {
    if (c.type !== 'pci' || c.index === 0) continue;
    if (c.model !== 'pcie-root-port') {
      throw new PassthruError(
        'CONFIG_UNSUPPORTED',
        `PCI controller model '${c.model ?? '?'}' (index ${c.index}) is not supported`,
        c.line === undefined ? {} : { line: c.line },
      );
    }
    device(a, rootPortProps(c, buses));
  }
  for (const c of def.devices.controllers) {
    if (c.type !== 'scsi') continue;
    if (!isVirtioScsi(c)) {
      throw new PassthruError(
        'CONFIG_UNSUPPORTED',
        `SCSI controller model '${c.model ?? '?'}' (index ${c.index}) is not supported; use virtio-scsi`,
        c.line === undefined ? {} : { line: c.line },
      );
    }
    device(a, scsiControllerProps(c.alias ?? `scsi${c.index}`, c.address, buses));
  }
  const boot = diskBootIndexes(def);
  for (const d of typedDisks(def.devices)) {
    for (const node of blockdevArgs(d)) a.push('-blockdev', node);
    device(a, diskDeviceProps(d, buses, boot.get(d)));
  }
  for (const iface of def.devices.interfaces) {
    if (isHostdevInterface(iface)) continue; // with the hostdevs, as libvirt does
    a.push('-netdev', JSON.stringify(netdevProps(iface, ctx.nicBackends?.get(iface.alias ?? ''))));
    device(a, nicProps(iface, buses));
  }
  serialArgs(a, def.devices.serials, ctx);
  for (const props of hostdevDeviceProps(def, ctx.hostDevices, buses)) device(a, props);
  // <on_reboot>destroy: a guest reboot ends QEMU like a poweroff (libvirt: -no-reboot).
  if (def.onReboot === 'destroy') a.push('-action', 'reboot=shutdown');
  if (ctx.incoming) a.push('-incoming', 'defer');
  a.push('-msg', 'timestamp=on');
  return a;
}

/** The -device properties of every host device that gets a guest device, in libvirt's order. */
function hostdevDeviceProps(
  def: DomainDef,
  presentations: ReadonlyMap<string, DevicePresentation>,
  buses: BusAliases = busAliases(def),
): DeviceProps[] {
  const out: DeviceProps[] = [];
  for (const h of hostDevices(def)) {
    if (!h.assigned) continue; // taken from the host, given no guest device
    const alias = h.alias ?? '';
    const presentation = presentations.get(alias);
    if (presentation === undefined) {
      throw new PassthruError(
        'INTERNAL',
        `no presentation from the host backend for ${alias || 'a hostdev'} (host ${formatPciAddress(h.source.address)})`,
      );
    }
    const dev = h.def;
    out.push(hostdevProps(dev, presentation, buses));
  }
  return out;
}

function device(a: string[], props: DeviceProps): void {
  a.push('-device', formatDeviceJson(props));
}

/** Serial ports as files. A port of another type (pty) and a domain without any serial port
 *  both go to the daemon's console (ctx.consoleSocket) or to ctx.consoleLog: the daemon always
 *  has the console to read. */
function serialArgs(a: string[], serials: readonly CharDevDef[], ctx: ArgvContext): void {
  const ports = serials.length > 0 ? serials : [{ type: 'file', alias: 'serial0', targetPort: 0 } as const];
  let fallbackUsed = false;
  for (const [i, s] of ports.entries()) {
    const alias = s.alias ?? `serial${i}`;
    const index = s.targetPort ?? i;
    let chardev: string;
    if (s.type === 'null') chardev = `null,id=char${alias}`;
    else if (s.type === 'file' && s.path !== undefined) {
      chardev = `file,id=char${alias},path=${optValue(s.path)}${s.append ? ',append=on' : ''}`;
    } else if (!fallbackUsed) {
      fallbackUsed = true;
      chardev =
        ctx.consoleSocket === undefined
          ? `file,id=char${alias},path=${optValue(ctx.consoleLog)}`
          : `socket,id=char${alias},path=${optValue(ctx.consoleSocket)},server=on,wait=off`;
    } else chardev = `null,id=char${alias}`;
    a.push('-chardev', chardev);
    device(a, serialProps(alias, index));
  }
}

/** Whether a serial port goes to ctx.consoleSocket / consoleLog (one that is not a file or null,
 *  or the port added for a domain without any). */
export function usesConsoleFallback(def: DomainDef): boolean {
  const serials = def.devices.serials;
  return serials.length === 0 || serials.some((s) => s.type !== 'null' && !(s.type === 'file' && s.path !== undefined));
}

/** `-cpu`: TCG has no host CPU to copy, so every mode gets 'max' (every feature TCG emulates;
 *  the live XML says mode='maximum', qemu/live-def.ts). Under KVM libvirt's mapping. */
function cpuArg(t: Tuning, accel: Accel): string {
  if (accel !== 'kvm') return 'max';
  switch (t.cpuMode) {
    case 'host-passthrough':
      return 'host,migratable=on';
    case 'custom':
      return t.cpuModel ?? 'qemu64';
    case 'maximum':
      return 'max';
    default:
      // host-model, and no <cpu>: the host's CPU (libvirt expands host-model to a named model
      // plus features; passthru gives QEMU the host's CPU directly).
      return 'host';
  }
}

/** `-smp` as libvirt writes it: with a `<topology>`, its counts (dies too); otherwise one socket
 *  per vCPU. */
function smpArg(vcpus: number, t: Tuning): string {
  const topo = t.topology;
  if (!topo) return `${vcpus},sockets=${vcpus},cores=1,threads=1`;
  return `${vcpus},sockets=${topo.sockets},dies=${topo.dies},cores=${topo.cores},threads=${topo.threads}`;
}

/** A value inside QEMU's key=value option syntax: a comma is written twice (libvirt does the same). */
function optValue(v: string): string {
  return v.replaceAll(',', ',,');
}
