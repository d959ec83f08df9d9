import type { DevicePresentation, VfConfig, VfPortProfile, VfSettings } from '../host/types.ts';

/**
 * The host changes of a prepare, as an ordered list of steps (libvirt's
 * virHostdevPreparePCIDevicesImpl order: save VF config -> bind the stub -> reset -> set VF
 * config).
 * Every step belongs to one device (its alias); each is journaled before it runs and marked
 * done after, with what it learned that its undo needs (the saved VF row, the driver it
 * replaced). Release undoes the done steps in reverse: restore VF config (while the VF still
 * sits on vfio-pci), reset, then rebind the host driver.
 *
 * A new kind of step is added here, in run-step.ts (run and undo) and in plan.ts; the crash
 * tier enumerates its kill points from the plan, so it is covered without being listed.
 */
export type Step = SaveVfStep | BindStubStep | ResetStep | SetVfStep | AssociatePortStep;

export interface SaveVfStep {
  readonly kind: 'save-vf-config';
  readonly alias: string;
  readonly address: string;
  /** The PF netdev whose VF table holds the row (one per port on a multi-port PF). */
  readonly pfNetdev: string;
  readonly vf: number;
  /** Filled when the step runs: the VF's row before we touched it. */
  readonly saved?: VfConfig;
}

export interface BindStubStep {
  readonly kind: 'bind-stub';
  readonly alias: string;
  readonly address: string;
  readonly stub: string;
  /** False when the device already sat on the stub, so release must leave it there
   *  (libvirt's unbind_from_stub). Set by the plan from what was bound before. */
  readonly changed?: boolean;
  readonly previousDriver?: string;
}

/** A non-VF device is reset after it is detached and again when it comes back, before its host
 *  driver has it (libvirt's virHostdevResetAllPCIDevices); skipped while it sits on vfio-pci,
 *  which resets it itself (host/reset.ts). Every reset is safe to repeat. */
export interface ResetStep {
  readonly kind: 'reset-device';
  readonly alias: string;
  readonly address: string;
  /** Filled when the step runs: the method used, or why none was ("skipped: ..."). */
  readonly outcome?: string;
}

export interface SetVfStep {
  readonly kind: 'set-vf-config';
  readonly alias: string;
  readonly address: string;
  readonly pfNetdev: string;
  readonly vf: number;
  /** What to program through the PF. The VLAN is always given (id 0 clears tagging, as libvirt
   *  does when the interface has no <vlan>); the undo restores every field given here from the
   *  row its save step read. */
  readonly settings: VfSettings;
}

/** 802.1Qbh / 802.1Qbg: the VF's port (pre)associated with a profile through its PF, after its
 *  MAC is set; the undo disassociates it. */
export interface AssociatePortStep {
  readonly kind: 'associate-port';
  readonly alias: string;
  readonly address: string;
  readonly pfNetdev: string;
  readonly vf: number;
  readonly profile: VfPortProfile;
  /** Pre-associate only, for an incoming migration (PREASSOCIATE_RR / PREASSOCIATE). */
  readonly incoming: boolean;
}

/** planned -> running -> done when prepared; -> undone while released. */
export type StepStatus = 'planned' | 'running' | 'done' | 'undone';

export interface StepRecord {
  /** Position in its prepare call's plan: release undoes in reverse of it. */
  readonly seq: number;
  readonly status: StepStatus;
  readonly step: Step;
}

/**
 * One host device held by one domain: the unit of the journal and of the lease. `preparing`
 * until its prepare call commits (a crash before that undoes it), `prepared` after, and
 * `releasing` from the first write of its release (a crash after that finishes the release).
 */
export interface DeviceRecord {
  readonly domain: string;
  readonly alias: string;
  /** The PCI function, DDDD:BB:SS.F: the lease is on it. */
  readonly address: string;
  /** The prepare call's generation: a release that names an older one is refused. */
  readonly generation: number;
  readonly state: 'preparing' | 'prepared' | 'releasing';
  /** false for `assigned='no'` / `<address type='unassigned'/>`: held, but no QEMU device. */
  readonly assigned: boolean;
  readonly steps: readonly StepRecord[];
  /** How QEMU gets it (set at commit for an assigned device). */
  readonly presentation?: DevicePresentation;
}

/** A device that `nodedev-detach` put on a stub driver, remembered across daemon restarts. */
export interface DetachedDevice {
  readonly address: string;
  readonly stub: string;
  readonly previousDriver?: string;
}

/**
 * The journal: the device manager's whole state in one file, replaced atomically on every
 * write, so a device's steps and its lease can never disagree after a crash.
 *
 *   <state>/hostdev/journal.json
 *   { "version": 2, "nextGeneration": 8,
 *     "devices": [ { "domain": "web1", "alias": "hostdev0", "address": "0000:06:02.0",
 *                    "generation": 7, "state": "prepared", "assigned": true,
 *                    "steps": [ { "seq": 0, "status": "done", "step": { "kind": "bind-stub", ... } } ],
 *                    "presentation": { "kind": "vfio", "host": { ... } } } ],
 *     "detached": [ { "address": "0000:03:00.0", "stub": "vfio-pci", "previousDriver": "tg3" } ] }
 */
export interface JournalState {
  readonly version: 2;
  readonly nextGeneration: number;
  readonly devices: readonly DeviceRecord[];
  readonly detached: readonly DetachedDevice[];
}
