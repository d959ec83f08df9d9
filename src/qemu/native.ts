import type { DomainDef } from '../conf/domain/types.ts';
import type { DevicePresentation } from '../host/types.ts';
import type { Accel } from './accel.ts';
import { isHostdevInterface } from './aliases.ts';
import { buildArgv } from './argv.ts';
import { prepareLiveDef } from './live-def.ts';

/**
 * `domxml-to-native`: the command line a linux host would run for a definition, with no daemon
 * and no host: every host device is presented as vfio-pci (the linux presentation), paths are
 * those a daemon with `stateDir` would use. The first element is the emulator.
 */
export function nativeCommandLine(def: DomainDef, o: { stateDir: string; accel: Accel; emulator: string }): string[] {
  const live = prepareLiveDef(def);
  const hostDevices = new Map<string, DevicePresentation>();
  for (const h of live.devices.hostdevs) {
    if (h.alias !== undefined) hostDevices.set(h.alias, { kind: 'vfio', host: h.source.address });
  }
  for (const n of live.devices.interfaces) {
    if (!isHostdevInterface(n) || n.alias === undefined) continue;
    const source = n.type === 'network' ? n.actual?.source : n.source;
    if (source) hostDevices.set(n.alias, { kind: 'vfio', host: source.address });
  }
  const run = `${o.stateDir}/run/${def.name}`;
  return [
    def.devices.emulator ?? o.emulator,
    ...buildArgv(live, {
      accel: o.accel,
      qmpSocket: `${run}/qmp.sock`,
      consoleLog: `${run}/console.log`,
      pidfile: `${run}/qemu.pid`,
      hostDevices,
    }),
  ];
}
