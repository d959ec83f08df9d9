import { join } from 'node:path';
import type { DomainDef, HostdevDef, InterfaceDef } from '../../../src/conf/domain/types.ts';
import type { MacAddress } from '../../../src/conf/mac.ts';
import { parsePciAddress } from '../../../src/conf/pci-address.ts';
import type { DevicePresentation } from '../../../src/host/types.ts';
import { chooseAccel, readProcModules } from '../../../src/qemu/accel.ts';
import { buildArgv } from '../../../src/qemu/argv.ts';
import { launchQemu, type QemuProcess } from '../../../src/qemu/process.ts';
import type { GuestImage } from './env.ts';

/** A q35 guest that boots the test kernel directly, with the given devices. */
export function guestDomain(
  name: string,
  guest: GuestImage,
  devices: { readonly hostdevs?: HostdevDef[]; readonly interfaces?: InterfaceDef[] },
): DomainDef {
  return {
    name,
    memoryKiB: 256 * 1024,
    vcpus: 1,
    os: { type: 'hvm', machine: 'q35', kernel: guest.vmlinux, initrd: guest.initrd, cmdline: guest.append },
    devices: {
      controllers: [],
      hostdevs: devices.hostdevs ?? [],
      interfaces: devices.interfaces ?? [],
      serials: [],
      consoles: [],
    },
  };
}

export function pciHostdev(bdf: string): HostdevDef {
  return { mode: 'subsystem', type: 'pci', source: { managed: true, address: parsePciAddress(bdf) } };
}

/** A failover pair sharing one MAC: the virtio standby ua-backup0 and a VF primary paired with it. */
export function failoverPair(mac: MacAddress): InterfaceDef[] {
  return [
    { type: 'user', model: 'virtio', mac, alias: 'ua-backup0', teaming: { type: 'persistent' } },
    {
      type: 'hostdev',
      mac,
      source: { managed: true, address: parsePciAddress('0000:06:10.2') },
      teaming: { type: 'transient', persistent: 'ua-backup0' },
    },
  ];
}

export interface QemuPaths {
  readonly qmpSocket: string;
  readonly consoleLog: string;
  readonly pidfile: string;
  readonly logFile: string;
}

export interface StartedGuest {
  readonly vm: QemuProcess;
  readonly paths: QemuPaths;
}

/** Builds the command line of a live definition as the daemon does and starts QEMU on it; files
 *  go into `dir`, named after `prefix` when two QEMUs share it. */
export async function startGuest(o: {
  readonly qemu: string;
  readonly dir: string;
  readonly live: DomainDef;
  readonly hostDevices: ReadonlyMap<string, DevicePresentation>;
  readonly name: string;
  readonly prefix?: string;
  readonly startPaused?: boolean;
  readonly incoming?: boolean;
}): Promise<StartedGuest> {
  const prefix = o.prefix ?? 'qemu';
  const paths: QemuPaths = {
    qmpSocket: join(o.dir, `${prefix}.qmp`),
    consoleLog: join(o.dir, `${prefix}.console`),
    pidfile: join(o.dir, `${prefix}.pid`),
    logFile: join(o.dir, `${prefix}.log`),
  };
  const argv = buildArgv(o.live, {
    accel: chooseAccel(await readProcModules()),
    qmpSocket: paths.qmpSocket,
    consoleLog: paths.consoleLog,
    pidfile: paths.pidfile,
    hostDevices: o.hostDevices,
    ...(o.startPaused === undefined ? {} : { startPaused: o.startPaused }),
    ...(o.incoming === undefined ? {} : { incoming: o.incoming }),
  });
  const vm = await launchQemu({ binary: o.qemu, argv, ...paths, name: o.name });
  return { vm, paths };
}
