import { carriedDisks } from '../conf/domain/disk.ts';
import { hostDevices } from '../conf/domain/hostdevs.ts';
import type { DomainDef, OtherDeviceDef } from '../conf/domain/types.ts';
import { PassthruError } from '../conf/error.ts';
import { machineFamily } from '../qemu/addresses.ts';
import { iommuProps } from '../qemu/iommu.ts';

/**
 * The configuration layer reads all of libvirt's vocabulary in our scope; passthrud runs a part
 * of it so far. A domain that asks for more is refused at start, naming the device, rather than
 * started without it (libvirt's users lose settings to silent drops; ours must not).
 */
export function checkRunnable(def: DomainDef): void {
  const refuse = (what: string, line: number | undefined, hint?: string): never => {
    throw new PassthruError(
      'CONFIG_UNSUPPORTED',
      `domain ${def.name}: ${what}${line === undefined ? '' : ` (line ${line})`} cannot be run by passthrud yet`,
      hint === undefined ? {} : { hint },
    );
  };
  // What a guest's poweroff, reboot and crash do: QEMU exits (destroy) or the daemon starts it
  // again / QEMU resets it (restart). Keeping a dead guest (preserve) and core dumps are not run.
  for (const [el, value] of [
    ['on_poweroff', def.onPoweroff],
    ['on_reboot', def.onReboot],
    ['on_crash', def.onCrash],
  ] as const) {
    if (value !== undefined && value !== 'destroy' && value !== 'restart') {
      refuse(`<${el}>${value}</${el}>`, undefined, 'destroy and restart run today');
    }
  }
  for (const n of def.devices.interfaces) {
    if (n.type === 'ethernet')
      refuse(
        `<interface type='${n.type}'>`,
        n.line,
        'hostdev, hostdev-hybrid, network (hostdev networks), bridge, direct and user interfaces run today',
      );
    // The device manager (pre)associates 802.1Qbh/802.1Qbg port profiles of a VF through its PF.
    const vfProfile =
      (n.type === 'hostdev' || n.type === 'hostdev-hybrid' || n.type === 'network') &&
      (n.virtualport?.type === '802.1Qbh' || n.virtualport?.type === '802.1Qbg');
    if (n.virtualport && !vfProfile)
      refuse(`<virtualport type='${n.virtualport.type ?? ''}'> on <interface type='${n.type}'>`, n.line);
  }
  for (const h of def.devices.hostdevs) {
    if (h.netdevs?.length) refuse('<netdev port=...> on a <hostdev>', h.line);
  }
  for (const d of carriedDisks(def.devices)) {
    refuse(
      '<disk>',
      d.xml.line,
      'file and block disks (raw or qcow2; bus virtio, sata, scsi or ide; driver cache and discard) run today',
    );
  }
  for (const d of def.devices.others ?? []) {
    if (isImplicit(d) || d.kind === 'iommu') continue;
    refuse(`<${d.kind}>`, d.xml.line);
  }
  // The vIOMMU runs (qemu/iommu.ts); what QEMU would refuse about it is refused here, before the
  // host is touched. Every assigned host device counts as VFIO: on the sim host it stands for one.
  iommuProps(
    def,
    machineFamily(def) === 'q35',
    hostDevices(def).some((h) => h.assigned),
  );
}

/** What every x86 machine has and define writes in as libvirt does (qemu/define-def.ts): the
 *  i8042's PS/2 mouse and keyboard, no host audio, and no balloon (`model='none'`). */
function isImplicit(d: OtherDeviceDef): boolean {
  const a = (k: string): string | undefined => d.xml.attrs.get(k);
  if (d.kind === 'memballoon') return a('model') === 'none';
  if (d.kind === 'input') return a('bus') === 'ps2' && (a('type') === 'mouse' || a('type') === 'keyboard');
  if (d.kind === 'audio') return a('type') === 'none';
  return false;
}
