import { PassthruError } from '../conf/error.ts';
import { type MacAddress, ZERO_MAC } from '../conf/mac.ts';
import { parsePciAddress } from '../conf/pci-address.ts';
import type { VfConfig, VfSettings } from '../host/types.ts';
import type { HostOps } from './facts.ts';
import type { Step } from './steps.ts';

/** Some PF drivers refuse an all-zero admin MAC; libvirt then writes this "almost zero"
 *  locally administered one, which also shows at a glance which VFs are free (d5f4abef). */
const ALMOST_ZERO_MAC = '02:00:00:00:00:00' as MacAddress;

/** Performs one step and returns it completed with what its undo will need. */
export async function runStep(host: HostOps, step: Step): Promise<Step> {
  switch (step.kind) {
    case 'save-vf-config': {
      const row = await host.vfRow(step.pfNetdev, step.vf);
      if (!row) {
        throw new PassthruError(
          'HOST_FAILED',
          `PF ${step.pfNetdev} reports no VF ${step.vf} in its VF table (${step.address})`,
        );
      }
      return { ...step, saved: row };
    }
    case 'bind-stub': {
      const r = await host.bindStub(parsePciAddress(step.address), step.stub);
      return {
        ...step,
        changed: r.changed,
        ...(r.previousDriver === undefined ? {} : { previousDriver: r.previousDriver }),
      };
    }
    case 'reset-device': {
      const r = await host.reset(parsePciAddress(step.address));
      return { ...step, outcome: r.method ?? `skipped: ${r.why ?? 'no reset done'}` };
    }
    case 'set-vf-config':
      await host.setVf(step.pfNetdev, step.vf, step.settings);
      return step;
    case 'associate-port':
      await host.associatePort(step.pfNetdev, step.vf, step.profile, step.incoming);
      return step;
  }
}

/** Whether undoing the step changes the host (release journals only those). */
export function undoChangesHost(step: Step): boolean {
  switch (step.kind) {
    case 'save-vf-config':
      return false;
    case 'bind-stub':
      return step.changed !== false;
    case 'reset-device':
    case 'set-vf-config':
    case 'associate-port':
      return true;
  }
}

/** Undoes a step that ran (or may have: one recorded as running). Every undo is safe to repeat.
 *  `all` is the device's steps, where a set step finds the row its save step read. */
export async function undoStep(host: HostOps, step: Step, all: readonly Step[]): Promise<void> {
  switch (step.kind) {
    case 'save-vf-config':
      return;
    case 'bind-stub':
      if (step.changed) await host.rebindHostDriver(parsePciAddress(step.address), step.previousDriver);
      return;
    case 'associate-port':
      await host.disassociatePort(step.pfNetdev, step.vf, step.profile);
      return;
    case 'reset-device':
      await host.reset(parsePciAddress(step.address));
      return;
    case 'set-vf-config': {
      const save = all.find(
        (s) => s.kind === 'save-vf-config' && s.address === step.address && s.pfNetdev === step.pfNetdev,
      );
      const saved = save?.kind === 'save-vf-config' ? save.saved : undefined;
      if (!saved) return;
      await restoreVf(host, step.pfNetdev, step.vf, restoreSettings(step.settings, saved));
      return;
    }
  }
}

/** What puts back every field the set step changed, from the row saved before it. */
function restoreSettings(set: VfSettings, saved: VfConfig): VfSettings {
  return {
    ...(set.mac === undefined ? {} : { mac: saved.mac }),
    ...(set.vlan === undefined
      ? {}
      : { vlan: { id: saved.vlan, qos: saved.qos, ...(saved.vlanProto ? { proto: saved.vlanProto } : {}) } }),
    ...(set.spoofchk === undefined || saved.spoofchk === undefined ? {} : { spoofchk: saved.spoofchk }),
    ...(set.trust === undefined || saved.trust === undefined ? {} : { trust: saved.trust }),
    ...(set.linkState === undefined || saved.linkState === undefined ? {} : { linkState: saved.linkState }),
    ...(set.rate === undefined ? {} : { rate: { minTx: saved.minTxRate ?? 0, maxTx: saved.maxTxRate ?? 0 } }),
  };
}

async function restoreVf(host: HostOps, pf: string, vf: number, settings: VfSettings): Promise<void> {
  try {
    await host.setVf(pf, vf, settings);
  } catch (err) {
    if (!(settings.mac === ZERO_MAC && err instanceof PassthruError && err.errno === 'EINVAL')) throw err;
    await host.setVf(pf, vf, { ...settings, mac: ALMOST_ZERO_MAC });
  }
}
