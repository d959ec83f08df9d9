import { mkdir } from 'node:fs/promises';
import { openSimHost } from '../host/sim/kernel.ts';
import { simDatapath } from '../host/sim/switch.ts';
import { openLinuxHost } from '../host/linux/kernel.ts';
import type { Kernel } from '../host/types.ts';
import { hostOps } from '../hostdev/host-ops.ts';
import { HostdevManager } from '../hostdev/manager.ts';
import type { Logger } from '../lib/logger.ts';
import type { TlsIdentity } from '../protocol/client.ts';
import { Daemon } from './daemon.ts';
import { ImageClaims } from './image-claims.ts';
import { EventBus } from './events.ts';
import { parseHostSpec } from './host-backend.ts';
import { NodeDevices } from './nodedevs.ts';
import { HostViews } from './host-views.ts';
import { Pools } from '../network/pools.ts';
import { Store } from './store.ts';

export interface DaemonOptions {
  readonly host: string;
  readonly stateDir: string;
  readonly log: Logger;
  readonly emulator?: string;
  /** Free root ports each q35 definition keeps for hot-plug (default 1, libvirt's rule). */
  readonly spareRootPorts?: number;
  /** This daemon's identity towards other daemons (migration; --tls-cert/--tls-key/--tls-ca). */
  readonly tls?: TlsIdentity;
}

/** Startup in ARCHITECTURE.md's order: store -> device records -> reconnect QEMUs -> serve. */
export async function openDaemon(o: DaemonOptions): Promise<Daemon> {
  const spec = parseHostSpec(o.host);
  const kernel: Kernel = spec.backend === 'sim' ? await openSimHost(spec.dir) : await openLinuxHost();
  await mkdir(o.stateDir, { recursive: true, mode: 0o700 });
  const store = new Store(o.stateDir);
  await store.init();
  const hostdevs = await HostdevManager.open(hostOps(kernel), o.stateDir, o.log);
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
    ...(spec.backend === 'sim' ? { datapath: simDatapath(spec.dir, kernel.sysfs) } : {}),
  };
  const daemon = new Daemon({
    store,
    events,
    runs,
    pools,
    nodedevs: new NodeDevices(kernel, hostdevs, events),
    log: o.log,
    peers,
  });
  await daemon.load();
  return daemon;
}
