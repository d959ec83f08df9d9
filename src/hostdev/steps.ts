import type { MacAddress } from '../conf/mac.ts';

/**
 * The host changes of a prepare, as an ordered list of steps (libvirt's
 * virHostdevPreparePCIDevicesImpl order: save VF config -> bind the stub -> set VF config).
 * Each step is recorded before it runs and marked done after, with what it learned that its
 * undo needs (the saved VF row, the driver it replaced). Release undoes the done steps in
 * reverse: restore VF config (while the VF still sits on vfio-pci), then rebind the host driver.
 *
 * Record format (version 1), one JSON file per domain under <state>/hostdev/domains/:
 *   { "version": 1, "domain": "web1", "generation": 7,
 *     "steps": [ { "status": "done", "step": { "kind": "bind-stub", ... } }, ... ] }
 */
export type Step =
  | {
      readonly kind: 'save-vf-config';
      readonly alias: string;
      readonly address: string;
      readonly pfNetdev: string;
      readonly vf: number;
      /** Filled when the step runs: the VF's row before we touched it. */
      readonly saved?: { readonly mac: MacAddress; readonly vlan: number; readonly qos: number };
    }
  | {
      readonly kind: 'bind-stub';
      readonly alias: string;
      readonly address: string;
      readonly stub: string;
      /** False when the device already sat on the stub, so release must leave it there
       *  (libvirt's unbind_from_stub). Set by the plan from what was bound before. */
      readonly changed?: boolean;
      readonly previousDriver?: string;
    }
  | {
      readonly kind: 'set-vf-config';
      readonly alias: string;
      readonly address: string;
      readonly pfNetdev: string;
      readonly vf: number;
      readonly mac?: MacAddress;
      /** 0 clears tagging, as libvirt does when the interface has no <vlan>. */
      readonly vlan: number;
    };

export type StepStatus = 'running' | 'done';

export interface StepRecord {
  readonly status: StepStatus;
  readonly step: Step;
}

export interface DomainRecord {
  readonly version: 1;
  readonly domain: string;
  readonly generation: number;
  readonly steps: readonly StepRecord[];
}
