import { ZERO_MAC } from '../conf/mac.ts';
import type { AdminMac } from '../host/admin-macs.ts';
import type { DeviceRecord, JournalState } from './steps.ts';

/**
 * Who holds which PCI function. A lease is not stored apart: every device record of the journal
 * is one (device -> domain, alias, generation), from the first write of its prepare to the last
 * write of its release, so a lease can never outlive or predate its record. A new holder gets a
 * higher generation, so a late release naming an older generation cannot undo the next owner's
 * setup.
 */
export interface Lease {
  readonly domain: string;
  readonly alias: string;
  readonly generation: number;
}

/** The plain view the planner and the checks take: bdf -> the domain holding it. */
export type Holder = (bdf: string) => string | undefined;

export function leaseOf(state: JournalState, bdf: string): Lease | undefined {
  const r = state.devices.find((d) => d.address === bdf);
  return r && { domain: r.domain, alias: r.alias, generation: r.generation };
}

export function holderOf(state: JournalState): Holder {
  const byBdf = new Map(state.devices.map((d) => [d.address, d.domain]));
  return (bdf) => byBdf.get(bdf);
}

export function recordsOf(state: JournalState, domain: string): DeviceRecord[] {
  return state.devices.filter((d) => d.domain === domain);
}

/**
 * The guest MACs this host's devices hold by lease: the admin MAC each held VF was programmed
 * with, whether or not its VF table shows it now. The datapath takes a guest's MAC off its VF
 * while the guest runs on its standby (a failover unplug, host/datapath.ts) and puts it back
 * after; the MAC stays that VF's all along, so the "one MAC, one VF" guard counts it here too.
 */
export function leasedMacs(state: JournalState): AdminMac[] {
  return state.devices.flatMap((d) =>
    d.steps.flatMap(({ status, step }) =>
      step.kind === 'set-vf-config' &&
      (status === 'running' || status === 'done') &&
      step.settings.mac !== undefined &&
      step.settings.mac !== ZERO_MAC
        ? [{ mac: step.settings.mac, pfNetdev: step.pfNetdev, pf: step.pfNetdev, vf: step.vf, address: d.address }]
        : [],
    ),
  );
}
