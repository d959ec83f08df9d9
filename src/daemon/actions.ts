import type { GuestConsole } from './console.ts';
import type {
  AuditEntry,
  DomainHostdev,
  DeviceChange,
  DeviceRef,
  DomainInfo,
  DomainSummary,
  InterfaceRow,
  NativeArgv,
  ShutdownResult,
  FinishReply,
  IncomingReply,
  MigrationEvent,
  MigrationReport,
  NetworkPortSummary,
  CheckReply,
  NodedevChange,
  NodedevCheck,
  NodeDeviceSummary,
  PoolInfo,
  PoolKind,
  PoolSummary,
  SriovChange,
  VfTable,
  VersionInfo,
} from '../protocol/wire.ts';

/**
 * Everything the daemon can be asked to do: one union, one door (Daemon.handle). A new action
 * is added in four places the compiler points at: here, its result in ActionResults, its line in
 * READ_ONLY, and its handler in the group module of its subject (groups/index.ts).
 */
export type Action =
  // domains (groups/domains.ts)
  | { readonly kind: 'define'; readonly xml: string }
  | { readonly kind: 'undefine'; readonly name: string }
  | { readonly kind: 'start'; readonly name: string }
  | { readonly kind: 'destroy'; readonly name: string }
  | { readonly kind: 'list' }
  | { readonly kind: 'dumpxml'; readonly name: string; readonly inactive: boolean }
  | { readonly kind: 'console'; readonly name: string }
  | { readonly kind: 'domxmlToNative'; readonly xml: string }
  // guest devices of a domain: hot-plug, hot-unplug, NICs (groups/devices.ts)
  | ({ readonly kind: 'attachDevice'; readonly name: string; readonly xml: string } & DeviceFlags)
  | ({ readonly kind: 'detachDevice'; readonly name: string; readonly xml: string } & DeviceFlags & UnplugWait)
  | ({ readonly kind: 'detachDeviceAlias'; readonly name: string; readonly alias: string } & DeviceFlags & UnplugWait)
  | { readonly kind: 'domiflist'; readonly name: string }
  // the running guest (groups/guest.ts)
  | { readonly kind: 'shutdown'; readonly name: string; readonly timeoutMs: number }
  | { readonly kind: 'reboot'; readonly name: string; readonly timeoutMs: number }
  | { readonly kind: 'suspend'; readonly name: string }
  | { readonly kind: 'resume'; readonly name: string }
  | { readonly kind: 'dominfo'; readonly name: string }
  | { readonly kind: 'autostart'; readonly name: string; readonly enable: boolean }
  // node devices (groups/nodedevs.ts)
  | { readonly kind: 'nodedevList'; readonly cap?: 'pci' | 'net' }
  | { readonly kind: 'nodedevDumpxml'; readonly name: string }
  | { readonly kind: 'nodedevVfTable'; readonly name: string }
  | { readonly kind: 'nodedevDetach'; readonly name: string; readonly driver?: string; readonly force?: boolean }
  | { readonly kind: 'nodedevReattach'; readonly name: string }
  | { readonly kind: 'nodedevReset'; readonly name: string }
  | { readonly kind: 'nodedevCheck'; readonly name: string }
  | { readonly kind: 'nodedevSriov'; readonly name: string; readonly numVfs: number; readonly autoprobe?: boolean }
  | { readonly kind: 'nodedevRelease'; readonly name: string }
  | { readonly kind: 'domhostdev'; readonly name: string }
  | { readonly kind: 'poolDefine'; readonly pool: PoolKind; readonly xml: string }
  | { readonly kind: 'poolUndefine'; readonly pool: PoolKind; readonly name: string }
  | { readonly kind: 'poolStart'; readonly pool: PoolKind; readonly name: string }
  | { readonly kind: 'poolDestroy'; readonly pool: PoolKind; readonly name: string }
  | { readonly kind: 'poolAutostart'; readonly pool: PoolKind; readonly name: string; readonly enable: boolean }
  | { readonly kind: 'poolList'; readonly pool: PoolKind }
  | { readonly kind: 'poolDumpxml'; readonly pool: PoolKind; readonly name: string; readonly inactive: boolean }
  | { readonly kind: 'poolInfo'; readonly pool: PoolKind; readonly name: string }
  | { readonly kind: 'netPortCreate'; readonly network: string; readonly xml: string }
  | { readonly kind: 'netPortDelete'; readonly network: string; readonly uuid: string }
  | { readonly kind: 'netPortList'; readonly network: string }
  | { readonly kind: 'netPortDumpxml'; readonly network: string; readonly uuid: string }
  // migration (groups/migration.ts)
  | {
      readonly kind: 'migrate';
      readonly name: string;
      readonly dest: string;
      readonly live?: boolean;
      readonly unplugHostdevs?: boolean;
      readonly timeoutMs?: number;
      readonly stallTimeoutMs?: number;
      /** MiB/s */
      readonly bandwidth?: number;
      readonly incomingLeaseMs?: number;
    }
  | { readonly kind: 'migrateCheck'; readonly xml: string }
  | {
      readonly kind: 'migrateIncoming';
      readonly xml: string;
      readonly listenHost: string;
      readonly tls: boolean;
      readonly leaseMs?: number;
    }
  | { readonly kind: 'migrateRenew'; readonly name: string }
  | {
      readonly kind: 'migrateFinish';
      readonly name: string;
      readonly ok: boolean;
      /** A rollback's cause, in the source's words, for the destination's event. */
      readonly why?: string;
      readonly reason?: MigrationEvent['reason'];
    }
  | { readonly kind: 'migratePlug'; readonly name: string; readonly xml: string }
  // the daemon itself: its metrics and its audit log (groups/observe.ts)
  | { readonly kind: 'metrics' }
  | { readonly kind: 'audit'; readonly since?: string; readonly device?: string; readonly limit?: number }
  // the daemon as a service (groups/service.ts)
  | { readonly kind: 'version' };

/** libvirt's --live / --config; neither means the running domain if it runs, else its definition. */
export interface DeviceFlags {
  readonly live?: boolean;
  readonly config?: boolean;
}

export interface UnplugWait {
  /** How long to wait for the guest to let go before answering unplug-pending (default 5000). */
  readonly timeoutMs?: number;
}

export interface ActionResults {
  define: DomainSummary;
  undefine: Record<string, never>;
  start: DomainSummary;
  destroy: DomainSummary;
  list: DomainSummary[];
  dumpxml: { xml: string };
  /** The guest's serial console, to attach to (the API turns it into an upgraded stream). */
  console: GuestConsole;
  domxmlToNative: NativeArgv;
  attachDevice: DeviceChange;
  detachDevice: DeviceChange;
  detachDeviceAlias: DeviceChange;
  domiflist: InterfaceRow[];
  shutdown: ShutdownResult;
  reboot: ShutdownResult;
  suspend: DomainSummary;
  resume: DomainSummary;
  dominfo: DomainInfo;
  autostart: DomainInfo;
  nodedevList: NodeDeviceSummary[];
  nodedevDumpxml: { xml: string };
  nodedevVfTable: VfTable;
  nodedevDetach: NodedevChange;
  nodedevReattach: NodedevChange;
  nodedevReset: NodedevChange;
  nodedevCheck: NodedevCheck;
  nodedevSriov: SriovChange;
  nodedevRelease: { pools: string[] };
  domhostdev: DomainHostdev[];
  poolDefine: PoolSummary;
  poolUndefine: Record<string, never>;
  poolStart: PoolSummary;
  poolDestroy: PoolSummary;
  poolAutostart: PoolSummary;
  poolList: PoolSummary[];
  poolDumpxml: { xml: string };
  poolInfo: PoolInfo;
  netPortCreate: NetworkPortSummary;
  netPortDelete: Record<string, never>;
  netPortList: NetworkPortSummary[];
  netPortDumpxml: { xml: string };
  migrate: MigrationReport;
  migrateCheck: CheckReply;
  migrateIncoming: IncomingReply;
  migrateRenew: { readonly name: string; readonly leaseMs: number };
  migrateFinish: FinishReply;
  migratePlug: { readonly devices: readonly DeviceRef[] };
  /** Prometheus' text exposition format. */
  metrics: { text: string };
  audit: AuditEntry[];
  version: VersionInfo;
}

export type ActionKind = Action['kind'];
export type ActionOf<K extends ActionKind> = Extract<Action, { kind: K }>;

/**
 * Which actions only read: they change nothing on the host, in QEMU or in the store, so a
 * read-only socket (libvirt's virtqemud-sock-ro) may serve them. Checked exhaustive: a new
 * action must say which it is. When unsure, `false` (a read-only client is refused it).
 */
export const READ_ONLY = {
  define: false,
  undefine: false,
  start: false,
  destroy: false,
  list: true,
  dumpxml: true,
  console: false,
  domxmlToNative: true,
  attachDevice: false,
  detachDevice: false,
  detachDeviceAlias: false,
  domiflist: true,
  shutdown: false,
  reboot: false,
  suspend: false,
  resume: false,
  dominfo: true,
  autostart: false,
  nodedevList: true,
  nodedevDumpxml: true,
  nodedevVfTable: true,
  nodedevDetach: false,
  nodedevReattach: false,
  nodedevReset: false,
  nodedevCheck: true,
  nodedevSriov: false,
  nodedevRelease: false,
  domhostdev: true,
  poolDefine: false,
  poolUndefine: false,
  poolStart: false,
  poolDestroy: false,
  poolAutostart: false,
  poolList: true,
  poolDumpxml: true,
  poolInfo: true,
  netPortCreate: false,
  netPortDelete: false,
  netPortList: true,
  netPortDumpxml: true,
  migrate: false,
  migrateCheck: false,
  migrateIncoming: false,
  migrateRenew: false,
  migrateFinish: false,
  migratePlug: false,
  metrics: true,
  audit: true,
  version: true,
} as const satisfies Readonly<Record<ActionKind, boolean>>;

export function isReadOnly(action: Action): boolean {
  return READ_ONLY[action.kind];
}
