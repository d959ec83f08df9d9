import { PassthruError } from '../conf/error.ts';
import { type MacAddress, ZERO_MAC } from '../conf/mac.ts';
import { parsePciAddress } from '../conf/pci-address.ts';
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
      return { ...step, saved: { mac: row.mac, vlan: row.vlan, qos: row.qos } };
    }
    case 'bind-stub': {
      const r = await host.bindStub(parsePciAddress(step.address), step.stub);
      return {
        ...step,
        changed: r.changed,
        ...(r.previousDriver === undefined ? {} : { previousDriver: r.previousDriver }),
      };
    }
    case 'set-vf-config':
      await host.setVf(step.pfNetdev, step.vf, {
        ...(step.mac ? { mac: step.mac } : {}),
        vlan: { id: step.vlan },
      });
      return step;
  }
}

/** Undoes a done step. `all` is the whole done list, where a set step finds its saved row. */
export async function undoStep(host: HostOps, step: Step, all: readonly Step[]): Promise<void> {
  switch (step.kind) {
    case 'save-vf-config':
      return;
    case 'bind-stub':
      if (step.changed) await host.rebindHostDriver(parsePciAddress(step.address), step.previousDriver);
      return;
    case 'set-vf-config': {
      const save = all.find((s) => s.kind === 'save-vf-config' && s.address === step.address);
      const saved = save?.kind === 'save-vf-config' ? save.saved : undefined;
      if (!saved) return;
      await restoreVf(host, step.pfNetdev, step.vf, saved.mac, saved.vlan, saved.qos);
      return;
    }
  }
}

async function restoreVf(
  host: HostOps,
  pf: string,
  vf: number,
  mac: MacAddress,
  vlan: number,
  qos: number,
): Promise<void> {
  try {
    await host.setVf(pf, vf, { mac, vlan: { id: vlan, qos } });
  } catch (err) {
    if (!(mac === ZERO_MAC && err instanceof PassthruError && err.errno === 'EINVAL')) throw err;
    await host.setVf(pf, vf, { mac: ALMOST_ZERO_MAC, vlan: { id: vlan, qos } });
  }
}
