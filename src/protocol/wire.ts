/**
 * The API's wire types, shared by the daemon and the CLI (and nothing else of theirs). Paths:
 *
 *   GET    /domains                       -> DomainSummary[]
 *   POST   /domains            {xml}      -> DomainSummary        (define)
 *   DELETE /domains/:name                 -> {}                   (undefine)
 *   POST   /domains/:name/start           -> DomainSummary
 *   POST   /domains/:name/destroy         -> DomainSummary
 *   GET    /domains/:name/xml?inactive=1  -> {xml}
 *   POST   /domains/:name/shutdown {timeoutMs?} -> ShutdownResult  (ACPI power button, waits)
 *   POST   /domains/:name/reboot {timeoutMs?}   -> ShutdownResult
 *   POST   /domains/:name/suspend         -> DomainSummary
 *   POST   /domains/:name/resume          -> DomainSummary
 *   GET    /domains/:name/info            -> DomainInfo
 *   POST   /domains/:name/autostart {enable} -> DomainInfo
 *   GET    /domains/:name/console (Upgrade: passthru-console) -> the serial console, raw
 *   GET    /nodedevs?cap=pci|net          -> NodeDeviceSummary[]
 *   GET    /nodedevs/:name/xml            -> {xml}
 *   GET    /nodedevs/:name/vfs            -> VfTable              (a PF's VF table)
 *   POST   /nodedevs/:name/detach {driver?} -> NodedevChange     (bind vfio-pci or a variant)
 *   POST   /nodedevs/:name/reattach       -> NodedevChange        (back to the host driver)
 *   POST   /nodedevs/:name/reset          -> NodedevChange
 *   GET    /nodedevs/:name/check          -> NodedevCheck
 *   POST   /nodedevs/:name/sriov {numVfs, autoprobe?} -> SriovChange
 *   GET    /domains/:name/hostdevs        -> DomainHostdev[]      (domhostdev)
 *   POST   /nodedevs/:name/release        -> {pools}              (out of quarantine)
 *   GET    /networks | /devpools          -> PoolSummary[]        (the same routes for both kinds)
 *   POST   /networks           {xml}      -> PoolSummary          (define)
 *   DELETE /networks/:name                -> {}                   (undefine)
 *   POST   /networks/:name/start | destroy -> PoolSummary
 *   POST   /networks/:name/autostart {enable} -> PoolSummary
 *   GET    /networks/:name/xml?inactive=1 -> {xml}
 *   GET    /networks/:name/info           -> PoolInfo
 *   POST   /networks/:name/ports {xml}    -> NetworkPortSummary   (net-port-create)
 *   GET    /networks/:name/ports          -> NetworkPortSummary[]
 *   GET    /networks/:name/ports/:uuid/xml -> {xml}
 *   DELETE /networks/:name/ports/:uuid    -> {}
 *   POST   /domains/:name/devices {xml, live?, config?}            -> DeviceChange (attach-device)
 *   POST   /domains/:name/devices/detach {xml, live?, config?, timeoutMs?} -> DeviceChange
 *   POST   /domains/:name/devices/:alias/detach {live?, config?, timeoutMs?} -> DeviceChange
 *   GET    /domains/:name/interfaces      -> InterfaceRow[]       (domiflist)
 *   POST   /native            {xml}      -> NativeArgv            (domxml-to-native)
 *   GET    /events                        -> text/event-stream of DaemonEvent
 *   POST   /domains/:name/migrate {dest, live?, unplugHostdevs?, timeoutS?, stallTimeoutS?, bandwidth?, incomingLeaseS?}
 *                                        -> MigrationReport
 *   POST   /migrations/check {xml}  -> CheckReply                         (daemon to daemon)
 *   POST   /migrations/incoming {xml, listenHost, tls, leaseS?}  -> IncomingReply (daemon to daemon)
 *   POST   /migrations/:name/renew  -> IncomingReply's lease             (daemon to daemon)
 *   POST   /migrations/:name/finish {ok, why?, reason?}  -> FinishReply    (daemon to daemon)
 *   POST   /migrations/:name/plug {xml}  -> {devices}                      (daemon to daemon)
 *   GET    /metrics                       -> Prometheus text exposition (text/plain; version=0.0.4)
 *   GET    /audit?since=&device=&limit=   -> AuditEntry[]         (the host changes, oldest first)
 *
 * Errors: any status >= 400 with an ErrorBody. The read-only socket (readOnlySocketOf) serves
 * the actions daemon/actions.ts READ_ONLY marks and the events; any other answers 403
 * ACCESS_DENIED. Bodies over 4 MiB answer 413 REQUEST_TOO_LARGE.
 */

export type DomainState = 'shutoff' | 'starting' | 'running' | 'paused' | 'stopping' | 'crashed' | 'migrating';

export interface DomainSummary {
  readonly name: string;
  readonly uuid: string;
  readonly state: DomainState;
  /** QEMU's pid while running. */
  readonly pid?: number;
  /** Why it is in its state, in libvirt's words (domstate --reason): booted, unpaused, user,
   *  shutdown, destroyed, crashed. */
  readonly reason?: string;
}

/** dominfo. */
export interface DomainInfo extends DomainSummary {
  readonly vcpus: number;
  readonly memoryKiB: number;
  /** QEMU's CPU time (user + system), seconds; running domains only. */
  readonly cpuTimeSeconds?: number;
  readonly uptimeSeconds?: number;
  readonly autostart: boolean;
  /** The host PCI devices the guest holds, by guest alias. */
  readonly hostDevices: readonly { readonly alias: string; readonly address: string }[];
}

/** shutdown / reboot: the ACPI power button was pressed; whether the guest acted on it in time. */
export interface ShutdownResult {
  readonly domain: DomainSummary;
  /** false: the guest did not shut down (reboot: did not go down) within the timeout. */
  readonly done: boolean;
  readonly waitedMs: number;
}

export interface NodeDeviceSummary {
  readonly name: string;
  readonly capability: 'pci' | 'net';
  readonly parent?: string;
  /** pci: the bound driver; net: the netdev's interface name. */
  readonly detail?: string;
}

/** A VF of `nodedev-vfs`. mac ... netdev are its first port's (kept for older clients);
 *  `ports` has every port (two on a dual-port ConnectX-3 VF). */
export interface VfRow {
  readonly vf: number;
  readonly address: string;
  readonly mac: string;
  readonly vlan: number;
  readonly qos: number;
  readonly spoofchk?: boolean;
  readonly trust?: boolean;
  readonly driver?: string;
  readonly netdev?: string;
  /** The domain holding the VF (its lease). */
  readonly domain?: string;
  readonly ports: readonly VfPortRow[];
}

/** One port of a VF, as its PF netdev's VF table reports it. */
export interface VfPortRow {
  /** 1-based, as `<netdev port='N'>`: the PF netdev whose dev_port is N-1. */
  readonly port: number;
  readonly pfNetdev: string;
  /** The VF's own netdev on this port, when its driver is a net driver. */
  readonly netdev?: string;
  readonly mac: string;
  readonly vlan: number;
  readonly qos: number;
  readonly proto: '802.1Q' | '802.1ad';
  /** Absent when the driver does not report it. */
  readonly spoofchk?: boolean;
  readonly trust?: boolean;
  readonly linkState?: 'auto' | 'enable' | 'disable';
  /** Mbit/s; 0 = no limit. */
  readonly minTxRate: number;
  readonly maxTxRate: number;
}

export interface VfTable {
  readonly pf: string;
  readonly pfNetdev: string;
  readonly vfs: readonly VfRow[];
}

export interface XmlBody {
  readonly xml: string;
}

export interface ErrorBody {
  readonly code: string;
  readonly message: string;
  readonly hint?: string;
  readonly line?: number;
  readonly column?: number;
}

/** One guest device of a hot-plug or hot-unplug: its alias (the QEMU id) and guest address. */
export interface DeviceRef {
  readonly alias: string;
  /** The guest PCI address, 0000:01:00.0; absent for an unassigned function. */
  readonly address?: string;
  /** The host PCI function behind it, if it is a host device. */
  readonly host?: string;
}

/**
 * The answer to attach-device / detach-device. `unplug-pending`: QEMU asked the guest to let go
 * and the guest has not yet; the devices stay in the live definition, held for this domain, and
 * are given back when the guest releases them (a `device` event `removed` says so) or the domain
 * is destroyed. The CLI exits 2 for it.
 */
export interface DeviceChange {
  readonly domain: string;
  readonly state: 'attached' | 'detached' | 'unplug-pending';
  readonly devices: readonly DeviceRef[];
  /** Which definitions changed. */
  readonly live: boolean;
  readonly config: boolean;
  /** One sentence for a person. */
  readonly message: string;
}

/** domiflist --json: one guest NIC. */
export interface InterfaceRow {
  /** <interface type=...>, or 'hostdev' for a <hostdev> whose host function is a NIC. */
  readonly type: string;
  readonly alias?: string;
  readonly mac?: string;
  readonly model?: string;
  /** Guest PCI address. */
  readonly address?: string;
  /** The host PCI function (a VF) behind it. */
  readonly vf?: string;
  /** Failover pair: the virtio NIC is the standby (failover=on), the VF the primary. */
  readonly failover?: 'standby' | 'primary';
  /** Whether the guest can see it now: a failover primary is hidden until the guest's virtio
   *  driver negotiates failover; a device being unplugged is still seen. */
  readonly guestVisible: boolean;
  readonly unplugPending?: boolean;
}

/** domxml-to-native: QEMU's command line for a definition, as the daemon would run it. */
export interface NativeArgv {
  readonly binary: string;
  readonly argv: readonly string[];
}

export type DaemonEvent =
  | MigrationEvent
  | {
      readonly type: 'domain';
      readonly event: 'defined' | 'undefined' | 'started' | 'stopped' | 'crashed' | 'suspended' | 'resumed';
      readonly name: string;
      readonly reason?: string;
    }
  /** libvirt's node-device lifecycle: a PCI function appeared, vanished, or changed (driver,
   *  netdevs, VF count, IOMMU group, driver_override: `fields`). */
  | {
      readonly type: 'nodedev';
      readonly event: 'created' | 'deleted' | 'updated';
      readonly name: string;
      readonly fields?: readonly string[];
    }
  /** A network or device pool was defined, undefined, started or stopped. */
  | {
      readonly type: 'pool';
      readonly event: 'defined' | 'undefined' | 'started' | 'stopped';
      readonly kind: PoolKind;
      readonly name: string;
    }
  /** A pool member (a VF of a network, a device of a pool) given to a domain or given back. */
  | {
      readonly type: 'pool-device';
      readonly event: 'allocated' | 'released';
      readonly kind: PoolKind;
      /** The network or device pool. */
      readonly name: string;
      readonly device: string;
      readonly domain: string;
      /** Which device of the domain: "interface 52:54:00:aa:00:01". */
      readonly label?: string;
      readonly quarantined?: boolean;
    }
  /** A guest device: plugged, gone (and given back to the host), asked to go but still held by
   *  the guest, or (a failover primary) shown to the guest once its virtio driver negotiated. */
  | {
      readonly type: 'device';
      readonly event: 'added' | 'removed' | 'unplug-pending' | 'failover-negotiated';
      /** The domain. */
      readonly name: string;
      readonly alias: string;
      readonly address?: string;
    };

/** A hostdev network (`net-*` commands) or a device pool (`devpool-*`). */
export type PoolKind = 'network' | 'devicepool';

export interface PoolSummary {
  readonly kind: PoolKind;
  readonly name: string;
  readonly uuid?: string;
  readonly active: boolean;
  readonly autostart: boolean;
}

/** net-info / devpool-info: the pool on this host now. The wire copy of network/pools.ts's
 *  PoolInfo (protocol imports nothing of the daemon's rooms); ActionResults makes the compiler
 *  check that the two stay the same shape. */
export interface PoolInfo extends PoolSummary {
  readonly size: number;
  readonly free: number;
  readonly inUse: readonly { readonly device: string; readonly domain: string }[];
  readonly quarantined: readonly string[];
  readonly unhealthy: readonly { readonly device: string; readonly problem: string }[];
}

/** domhostdev: one PCI device a domain holds, and where it came from. */
export interface DomainHostdev {
  readonly alias: string;
  /** undefined while a pool device is not given yet (domain not running). */
  readonly device?: string;
  readonly element: 'hostdev' | 'interface';
  readonly network?: string;
  readonly pool?: string;
  readonly mac?: string;
}

/** One change the daemon made to the host (passthru audit). The wire copy of host/audit.ts's
 *  AuditEntry; ActionResults makes the compiler check that the two stay the same shape. */
export interface AuditEntry {
  readonly time: string;
  /** The daemon's action ('start') or background work ('guest-exit', 'daemon-start'). */
  readonly operation?: string;
  /** bind, unbind, probe, driver-override, vf-count, vf-autoprobe, reset, vf-attribute,
   *  port-profile, load-module, sysfs-write, qemu-start, qemu-stop. */
  readonly action: string;
  readonly domain?: string;
  readonly device?: string;
  readonly detail?: string;
  readonly before?: unknown;
  readonly after?: unknown;
  readonly result: 'ok' | 'failed';
  readonly error?: string;
}

/** net-port-create / net-port-list: a network port (libvirt's virNetworkPort) and the VF it holds. */
export interface NetworkPortSummary {
  readonly uuid: string;
  /** The owning domain's name. */
  readonly owner: string;
  readonly mac: string;
  /** The VF's PCI address. */
  readonly device: string;
}

export const DEFAULT_SOCKET = '/run/passthru/passthru.sock';

/** The read-only socket beside a read-write one: `passthru.sock` -> `passthru-ro.sock` (as
 *  libvirt's libvirt-sock-ro), so a daemon on a test socket gets its own. */
export function readOnlySocketOf(socket: string): string {
  return socket.endsWith('.sock') ? `${socket.slice(0, -'.sock'.length)}-ro.sock` : `${socket}-ro`;
}
export const DEFAULT_STATE_DIR = '/var/lib/passthru';

/** nodedev-check: whether a PCI function can be given to a guest, and exactly why not. The
 *  wire copy of hostdev's AssignabilityReport (protocol imports nothing of the daemon's rooms);
 *  the daemon's ActionResults makes the compiler check that the two stay the same shape. */
export interface NodedevCheck {
  readonly device: string;
  readonly assignable: boolean;
  /** Every reason against, each a sentence naming the device; empty when assignable. */
  readonly reasons: readonly string[];
  /** Things to know that do not forbid it (other group members that would be taken too). */
  readonly notes: readonly string[];
  readonly iommuGroup?: number;
  readonly members: readonly {
    readonly address: string;
    readonly driver?: string;
    readonly netdevs: readonly string[];
    /** Bridges and switch ports may stay on their driver: VFIO does not need them. */
    readonly bridge: boolean;
    readonly heldBy?: string;
  }[];
}

export interface NodedevChange {
  readonly device: string;
  /** The driver bound after the change (undefined: none). */
  readonly driver?: string;
}

export interface SriovChange {
  readonly pf: string;
  readonly before: number;
  readonly after: number;
  /** false when the deadline passed before every VF showed up with its driver. */
  readonly settled: boolean;
}

/** A migration's phases, in order; each but `done` can be followed by `rolled-back`. */
export type MigrationPhase =
  | 'check'
  | 'prepare'
  | 'transfer'
  | 'unplugged'
  | 'confirm'
  | 'replugged'
  | 'done'
  | 'rolled-back'
  | 'failed';

/** Both daemons report a migration as it goes: the source with the RAM sent so far. */
export interface MigrationEvent {
  readonly type: 'migration';
  readonly name: string;
  readonly role: 'source' | 'destination';
  readonly phase: MigrationPhase;
  /** QEMU's migration status (setup, wait-unplug, active, completed ...), on the source. */
  readonly status?: string;
  readonly ramTransferred?: number;
  readonly ramTotal?: number;
  /** How long the guest has been without its VF so far (ms), from UNPLUG_PRIMARY. */
  readonly vfLessMs?: number;
  readonly detail?: string;
  /** Why a migration was rolled back when a deadline did it: the source saw no progress for
   *  its stall deadline, or the destination heard nothing from the source for its lease. */
  readonly reason?: 'stalled' | 'lease-lapsed';
}

export interface MigrateRequest {
  /** unix:/path or tls://HOST:PORT of the destination daemon. */
  readonly dest: string;
  readonly live?: boolean;
  readonly unplugHostdevs?: boolean;
  readonly timeoutS?: number;
  /** Cancel when the RAM sent does not move for this long (default: the daemon's setting). */
  readonly stallTimeoutS?: number;
  /** The stream's cap, MiB/s (virsh migrate --bandwidth). */
  readonly bandwidth?: number;
  /** The destination gives the migration up this long after the source's last word (default:
   *  the destination's setting). */
  readonly incomingLeaseS?: number;
}

export interface MigrationReport {
  readonly name: string;
  readonly dest: string;
  /** From the request to the source's release (ms, the source's clock). */
  readonly totalMs: number;
  /** QEMU's own figures. */
  readonly qemuTotalMs?: number;
  readonly downtimeMs?: number;
  /** From UNPLUG_PRIMARY on the source to the destination's primary plugged (ms). */
  readonly vfLessMs?: number;
  readonly statuses: readonly string[];
  readonly unplugged: readonly string[];
  /** --unplug-hostdevs: the devices plugged again on the destination, each with its new device. */
  readonly replugged?: readonly DeviceRef[];
  /** --unplug-hostdevs: from the source's unplug request to the destination's device_add done (ms,
   *  the source's clock): how long the guest was without them. */
  readonly unplugGapMs?: number;
  /** --unplug-hostdevs: why the destination could not plug them again (the guest runs there without). */
  readonly replugError?: string;
  /** Each phase's start, ms after the request. */
  readonly phases: readonly { readonly phase: MigrationPhase; readonly atMs: number }[];
}

export interface IncomingRequest {
  /** The source's live definition (aliases and guest addresses kept). */
  readonly xml: string;
  /** The address the destination's QEMU listens on for the stream. */
  readonly listenHost: string;
  /** The stream goes over TLS (both daemons have a TLS identity). */
  readonly tls: boolean;
  /** The lease the source asks for (default: the destination's setting). */
  readonly leaseS?: number;
}

/** What a destination would give an incoming guest now (its check, nothing taken). */
export interface CheckReply {
  readonly devices: readonly {
    readonly alias: string;
    /** The host PCI device, DDDD:BB:SS.F. */
    readonly address: string;
    /** The network or device pool it would come from (absent for a device named by address). */
    readonly pool?: string;
  }[];
}

export interface IncomingReply {
  /** Where the source's QEMU sends the stream: tcp:HOST:PORT. */
  readonly uri: string;
  /** The destination gives the migration up this long after the source's last word (prepare,
   *  renew, finish): the source renews well within it. */
  readonly leaseMs: number;
}

export interface FinishReply {
  readonly name: string;
  readonly state: DomainState;
  /** ms since the epoch when the destination's failover primary was plugged, if it has one. */
  readonly primaryPluggedAt?: number;
}

/** GET /version: what `passthru version` shows of the daemon's side. */
export interface VersionInfo {
  readonly daemon: string;
  /** The QEMU binary guests run on (the daemon's `qemu` setting) and its version; `error` when
   *  it does not answer `--version`. */
  readonly qemu: { readonly binary: string; readonly version?: string; readonly error?: string };
  /** The host backend, and the kernel release it runs on. */
  readonly host: { readonly backend: 'linux' | 'sim'; readonly kernel: string };
}
