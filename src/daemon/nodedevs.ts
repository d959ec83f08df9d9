import { PassthruError } from '../conf/error.ts';
import { formatPciAddress, type PciAddress, parsePciAddress, pciNodeDeviceName } from '../conf/pci-address.ts';
import { type Inventory, type PciDevice, readInventory, readPciDevice } from '../host/inventory.ts';
import { formatNodeDevice } from '../conf/nodedev/format.ts';
import { nodeDevices } from '../host/nodedev.ts';
import type { Kernel, VfConfig } from '../host/types.ts';
import { type HostWatcher, watchHost } from '../host/watch.ts';
import { uplinkNetdev } from '../hostdev/host-ops.ts';
import type { HostdevManager } from '../hostdev/manager.ts';
import type { EventBus } from './events.ts';
import type {
  NodedevChange,
  NodedevCheck,
  NodeDeviceSummary,
  SriovChange,
  VfPortRow,
  VfTable,
} from '../protocol/wire.ts';

/** The node-device part of the API, answered from the host as it is now (see inventory()). */
export class NodeDevices {
  readonly #kernel: Kernel;
  readonly #hostdevs: HostdevManager;
  readonly #events: EventBus;
  #watcher: HostWatcher | undefined;

  constructor(kernel: Kernel, hostdevs: HostdevManager, events: EventBus) {
    this.#kernel = kernel;
    this.#hostdevs = hostdevs;
    this.#events = events;
  }

  /** Follows the host (VFs created or destroyed, drivers rebound, from us or anyone) and tells
   *  API clients, whoever made the change. `onInventory` gets the watcher's first read and each
   *  one after a change, so the daemon's other views share one copy of the host's devices. */
  async follow(onInventory?: (inv: Inventory) => void): Promise<() => void> {
    const watcher = (this.#watcher = await watchHost(this.#kernel, (changes, inv) => {
      for (const c of changes) {
        this.#events.emit({
          type: 'nodedev',
          event: c.kind === 'added' ? 'created' : c.kind === 'removed' ? 'deleted' : 'updated',
          name: pciNodeDeviceName(c.address),
          ...(c.fields ? { fields: c.fields } : {}),
        });
      }
      onInventory?.(inv);
    }));
    onInventory?.(watcher.current());
    return () => {
      watcher.stop();
    };
  }

  /** After a change of ours, its events go out before the reply (and the watcher's next diff
   *  starts from what the reply says). */
  async #synced<T>(result: T): Promise<T> {
    await this.#watcher?.sync();
    return result;
  }

  async detach(name: string, driver = 'vfio-pci', force = false): Promise<NodedevChange> {
    const address = pciAddressOf(name);
    await this.#hostdevs.detach(address, driver, { force });
    return this.#synced(await this.#changed(address));
  }

  async reattach(name: string): Promise<NodedevChange> {
    const address = pciAddressOf(name);
    await this.#hostdevs.reattach(address);
    return this.#synced(await this.#changed(address));
  }

  async reset(name: string): Promise<NodedevChange> {
    const address = pciAddressOf(name);
    await this.#hostdevs.reset(address);
    return this.#synced(await this.#changed(address));
  }

  /** Which host backend the daemon runs on (`passthru version`). */
  get backend(): Kernel['backend'] {
    return this.#kernel.backend;
  }

  check(name: string): Promise<NodedevCheck> {
    return this.#hostdevs.check(pciAddressOf(name));
  }

  async sriov(name: string, numVfs: number, autoprobe?: boolean): Promise<SriovChange> {
    const pf = findPf(await this.inventory(), name);
    const r = await this.#hostdevs.setVfCount(pf.address, numVfs, autoprobe);
    // The watcher reports the PF's numVfs and each VF created or deleted.
    return this.#synced({ pf: pf.name, before: r.before, after: r.after, settled: r.settled });
  }

  async #changed(address: PciAddress): Promise<NodedevChange> {
    const device = formatPciAddress(address);
    const driver = (await readPciDevice(this.#kernel.sysfs, address)).driver;
    return { device, ...(driver === undefined ? {} : { driver }) };
  }

  /** The host's devices now: from the watcher while it follows the host (only what changed is
   *  read again), else read whole. */
  inventory(): Promise<Inventory> {
    return this.#watcher ? this.#watcher.fresh() : readInventory(this.#kernel.sysfs);
  }

  /**
   * The functions, VFs left out, of the PCI slots the addresses are in: what the multifunction
   * rule of hot-plug looks at, read from those slots alone (an inventory reads every VF of the
   * host; a VF is known by its physfn link without reading it).
   */
  async slotFunctions(addresses: readonly PciAddress[]): Promise<Inventory> {
    const sysfs = this.#kernel.sysfs;
    const slots = new Set(addresses.map((a) => formatPciAddress(a).slice(0, -1)));
    const names = (await sysfs.list('/sys/bus/pci/devices')).filter((n) => slots.has(n.slice(0, -1)));
    const devices: PciDevice[] = [];
    for (const n of names) {
      if ((await sysfs.readLink(`/sys/bus/pci/devices/${n}/physfn`)) !== undefined) continue;
      devices.push(await readPciDevice(sysfs, parsePciAddress(n)));
    }
    return { devices };
  }

  async list(cap?: 'pci' | 'net'): Promise<NodeDeviceSummary[]> {
    return nodeDevices(await this.inventory()).flatMap((d): NodeDeviceSummary[] => {
      const c = d.caps[0];
      if (!c || (cap !== undefined && c.type !== cap)) return [];
      const detail = c.type === 'net' ? c.interface : d.driver;
      return [
        {
          name: d.name,
          capability: c.type,
          ...(d.parent ? { parent: d.parent } : {}),
          ...(detail ? { detail } : {}),
        },
      ];
    });
  }

  async dumpxml(name: string): Promise<string> {
    const def = nodeDevices(await this.inventory()).find((d) => d.name === name);
    if (!def) throw noDevice(name);
    return formatNodeDevice(def);
  }

  /** A PF's VF table, named by node-device name, PCI address or netdev. */
  async vfTable(name: string): Promise<VfTable> {
    const inv = await this.inventory();
    const pf = findPf(inv, name);
    if (!pf.sriov) throw new PassthruError('INVALID_ARG', `${name} is not an SR-IOV PF`);
    const pfNetdev = uplinkNetdev(pf);
    if (pfNetdev === undefined) {
      throw new PassthruError('NO_DEVICE', `PF ${pf.name} has no network device, so it has no VF table`);
    }
    // One VF table per PF port (a dual-port ConnectX-3 PF has two netdevs and two tables).
    const ports = pf.netdevs.filter((n) => !n.representor).sort((a, b) => a.devPort - b.devPort);
    const tables = await Promise.all(ports.map(async (p) => ({ p, rows: await this.#kernel.vfTable(p.name) })));
    const byAddress = new Map(inv.devices.map((d) => [d.name, d]));
    const first = tables[0]?.rows ?? [];
    return {
      pf: pf.name,
      pfNetdev,
      vfs: first.map((r) => {
        const addr = pf.sriov?.vfs[r.vf];
        const bdf = addr ? formatPciAddress(addr) : undefined;
        const vf = bdf ? byAddress.get(bdf) : undefined;
        const domain = bdf ? this.#hostdevs.heldBy(bdf) : undefined;
        const vfPorts = tables.flatMap(({ p, rows }) => {
          const row = rows.find((x) => x.vf === r.vf);
          const netdev = vf?.netdevs.find((n) => n.devPort === p.devPort)?.name;
          return row ? [portRow(p.devPort + 1, p.name, netdev, row)] : [];
        });
        return {
          vf: r.vf,
          address: bdf ?? '-',
          mac: r.mac,
          vlan: r.vlan,
          qos: r.qos,
          ...(r.spoofchk === undefined ? {} : { spoofchk: r.spoofchk }),
          ...(r.trust === undefined ? {} : { trust: r.trust }),
          ...(vf?.driver ? { driver: vf.driver } : {}),
          ...(vf?.netdevs[0] ? { netdev: vf.netdevs[0].name } : {}),
          ...(domain === undefined ? {} : { domain }),
          ports: vfPorts,
        };
      }),
    };
  }
}

function portRow(port: number, pfNetdev: string, netdev: string | undefined, r: VfConfig): VfPortRow {
  return {
    port,
    pfNetdev,
    ...(netdev === undefined ? {} : { netdev }),
    mac: r.mac,
    vlan: r.vlan,
    qos: r.qos,
    proto: r.vlanProto ?? '802.1Q',
    ...(r.spoofchk === undefined ? {} : { spoofchk: r.spoofchk }),
    ...(r.trust === undefined ? {} : { trust: r.trust }),
    ...(r.linkState === undefined ? {} : { linkState: r.linkState }),
    minTxRate: r.minTxRate ?? 0,
    maxTxRate: r.maxTxRate ?? 0,
  };
}

function noDevice(name: string): PassthruError {
  return new PassthruError('NO_DEVICE', `node device '${name}' does not exist on this host`, {
    hint: "list them with 'passthru nodedev-list'",
  });
}

/** A PCI function by node-device name (pci_0000_06_02_0) or address (0000:06:02.0). */
function pciAddressOf(name: string): PciAddress {
  try {
    return parsePciAddress(name);
  } catch {
    throw noDevice(name);
  }
}

function findPf(inv: Inventory, name: string): PciDevice {
  const byName = inv.devices.find(
    (d) => pciNodeDeviceName(d.address) === name || d.netdevs.some((n) => n.name === name),
  );
  if (byName) return byName;
  let address;
  try {
    address = parsePciAddress(name);
  } catch {
    throw noDevice(name);
  }
  const d = inv.devices.find((x) => x.name === formatPciAddress(address));
  if (!d) throw noDevice(name);
  return d;
}
