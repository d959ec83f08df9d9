import type { DomainDef } from '../conf/domain/types.ts';
import type { DevicePresentation } from '../host/types.ts';
import type { Accel } from './accel.ts';
import { hostDevices } from '../conf/domain/hostdevs.ts';
import { buildArgv } from './argv.ts';
import { completeDefinition } from './define-def.ts';
import { prepareLiveDef } from './live-def.ts';

/**
 * `domxml-to-native`: the command line a linux host would run for a definition, as if it were
 * defined then started (define's fill-in, then the start's): every host device is presented as
 * vfio-pci (the linux presentation), paths are those a daemon with `stateDir` would use. The
 * first element is the emulator. The daemon answers with it, and `--offline` runs the same code.
 */
export function nativeCommandLine(
  def: DomainDef,
  o: { stateDir: string; accel: Accel; emulator: string; spareRootPorts?: number },
): string[] {
  const spare = o.spareRootPorts === undefined ? {} : { spareRootPorts: o.spareRootPorts };
  const live = prepareLiveDef(completeDefinition(def, spare), spare);
  const run = `${o.stateDir}/run/${def.name}`;
  return [
    def.devices.emulator ?? o.emulator,
    ...buildArgv(live, {
      accel: o.accel,
      qmpSocket: `${run}/qmp.sock`,
      consoleLog: `${run}/console.log`,
      pidfile: `${run}/qemu.pid`,
      hostDevices: vfioPresentations(live),
    }),
  ];
}

/** Every host device of a live definition that QEMU gets, as the linux backend presents it:
 *  vfio-pci, by alias. */
export function vfioPresentations(live: DomainDef): Map<string, DevicePresentation> {
  const map = new Map<string, DevicePresentation>();
  for (const h of hostDevices(live)) {
    if (h.assigned && h.alias !== undefined) map.set(h.alias, { kind: 'vfio', host: h.source.address });
  }
  return map;
}
