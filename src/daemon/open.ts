import { mkdir } from 'node:fs/promises';
import { auditedKernel } from '../host/audit-kernel.ts';
import { openSimHost } from '../host/sim/kernel.ts';
import { adminMacDatapath } from '../host/datapath.ts';
import { simDatapath } from '../host/sim/switch.ts';
import { openLinuxHost } from '../host/linux/kernel.ts';
import { LinuxNetdevs } from '../host/linux/netdev.ts';
import { SimNetdevs } from '../host/sim/netdev.ts';
import type { Kernel } from '../host/types.ts';
import { hostOps } from '../hostdev/host-ops.ts';
import { HostdevManager } from '../hostdev/manager.ts';
import type { Logger } from '../lib/logger.ts';
import type { TlsIdentity } from '../protocol/client.ts';
import { AuditLog, defaultAuditLog } from './audit-log.ts';
import { Daemon } from './daemon.ts';
import { DaemonMetrics } from './metrics.ts';
import { ImageClaims } from './image-claims.ts';
import { EventBus } from './events.ts';
import { parseHostSpec } from './host-backend.ts';
import { NodeDevices } from './nodedevs.ts';
import { HostViews } from './host-views.ts';
import { Pools } from '../network/pools.ts';
import { Store } from './store.ts';
import { QemuOwnership } from './qemu-owner.ts';
import type { QemuUser } from '../qemu/run-as.ts';
import type { MigrationDeadlines } from './context.ts';

export interface DaemonOptions {
  readonly host: string;
  readonly stateDir: string;
  readonly log: Logger;
  readonly emulator?: string;
  /** Free root ports each q35 definition keeps for hot-plug (default 1, libvirt's rule). */
  readonly spareRootPorts?: number;
  /** This daemon's identity towards other daemons (migration; --tls-cert/--tls-key/--tls-ca). */
  readonly tls?: TlsIdentity;
  /** The audit log of host changes (default: defaultAuditLog of the state directory). */
  readonly auditLog?: { readonly path?: string; readonly maxBytes?: number };
  /** The unprivileged account QEMU runs as (--qemu-user); root when absent. */
  readonly qemuUser?: QemuUser;
  /** Migration deadlines (--migration-stall-timeout, --migration-incoming-lease). */
  readonly migration?: MigrationDeadlines;
}

/** Startup in ARCHITECTURE.md's order: store -> device records -> reconnect QEMUs -> serve. */
export async function openDaemon(o: DaemonOptions): Promise<Daemon> {
  const spec = parseHostSpec(o.host);
  const backend: Kernel = spec.backend === 'sim' ? await openSimHost(spec.dir) : await openLinuxHost();
  await mkdir(o.stateDir, { recursive: true, mode: 0o700 });
  const audit = await AuditLog.open(
    {
      path: o.auditLog?.path ?? defaultAuditLog(o.stateDir),
      ...(o.auditLog?.maxBytes === undefined ? {} : { maxBytes: o.auditLog.maxBytes }),
    },
    o.log,
  );
  // Everything above host/ gets the audited kernel: no write reaches the host unrecorded.
  const kernel = auditedKernel(backend, audit.trail);
  const store = new Store(o.stateDir);
  await store.init();
  const hostdevs = await HostdevManager.open(hostOps(kernel), o.stateDir, o.log);
  audit.trail.resolveDomainsWith((bdf) => hostdevs.holder(bdf));
  const metrics = new DaemonMetrics();
  hostdevs.onUndoFailed(() => metrics.restoreFailed());
  const pools = await Pools.open(o.stateDir, o.log);
  const hostViews = new HostViews(kernel);
  const runs = {
    store,
    hostdevs,
    pools,
    hostViews,
    log: o.log,
    emulator: o.emulator ?? process.env['PASSTHRU_QEMU'] ?? 'qemu-system-x86_64',
    ...(o.spareRootPorts === undefined ? {} : { spareRootPorts: o.spareRootPorts }),
    images: new ImageClaims(),
    audit: audit.trail,
    qemuOwner: await QemuOwnership.open(o.qemuUser, o.stateDir, kernel.sysfs),
    netdevs: spec.backend === 'sim' ? new SimNetdevs(kernel.sysfs) : await LinuxNetdevs.open(),
  };
  const events = new EventBus();
  pools.onChange((c) =>
    events.emit({
      type: 'pool-device',
      event: c.event,
      kind: c.ref.kind,
      name: c.ref.name,
      device: c.device,
      domain: c.domain,
      ...(c.label === undefined ? {} : { label: c.label }),
      ...(c.quarantined === undefined ? {} : { quarantined: c.quarantined }),
    }),
  );
  // Our own changes to the set of devices (nodedev-sriov) come without fields: look again at
  // once rather than when the watcher gets to it.
  events.subscribe((_id, e) => {
    if (e.type === 'nodedev' && e.fields === undefined) hostViews.invalidate();
  });
  const peers = {
    ...(o.tls ? { tls: o.tls } : {}),
    // The sim steers in its switch model; a real host by the VF's admin MAC on the PF.
    datapath:
      spec.backend === 'sim'
        ? simDatapath(spec.dir, kernel.sysfs)
        : adminMacDatapath(kernel, (n) => {
            if (n.wrote !== n.asked)
              o.log.info(n, `PF ${n.pfNetdev} refuses admin MAC ${n.asked} on VF ${n.index}: wrote ${n.wrote}`);
          }),
    ...(o.migration ? { migration: o.migration } : {}),
  };
  const daemon = new Daemon({
    store,
    events,
    runs,
    pools,
    nodedevs: new NodeDevices(kernel, hostdevs, events),
    log: o.log,
    peers,
    metrics,
    audit,
  });
  await daemon.load();
  return daemon;
}
