import type { PciAddress } from '../conf/pci-address.ts';
import { vfOf, type VfOf } from '../host/bind.ts';
import { type Inventory, readInventory, refreshInventory } from '../host/inventory.ts';
import { readCpuNodes } from '../host/numa.ts';
import { DirSysfs } from '../host/sysfs.ts';
import type { Kernel } from '../host/types.ts';
import { type HostView, nextView } from '../network/members.ts';

/**
 * The host as the pools see it, kept between allocations: reading the inventory of a host with
 * 4096 VFs takes seconds, an allocation must take far less. The host watcher hands over each
 * inventory it reads (it reads one on every change anyway); an action of ours that changes the
 * set of devices (nodedev-sriov) drops it so the next look reads the host again.
 */
export class HostViews {
  readonly #kernel: Kernel;
  #inv: Promise<Inventory> | undefined;
  #view: Promise<HostView> | undefined;
  #cpuNodes: Promise<Map<number, number>> | undefined;
  #last: HostView | undefined;

  constructor(kernel: Kernel) {
    this.#kernel = kernel;
  }

  get(): Promise<HostView> {
    if (!this.#view) {
      const inv = this.#inv ?? readInventory(this.#kernel.sysfs);
      // From the last view when only a few functions changed since (nextView).
      const p = inv.then((i) => (this.#last = nextView(this.#last, i)));
      this.#inv = inv;
      this.#view = p;
      // A failed read is not kept: the next look tries again.
      p.catch(() => {
        if (this.#view === p) this.invalidate();
      });
    }
    return this.#view;
  }

  update(inv: Inventory): void {
    this.#inv = Promise.resolve(inv);
    this.#view = undefined;
  }

  invalidate(): void {
    this.#inv = undefined;
    this.#view = undefined;
    this.#last = undefined;
  }

  /** Re-reads a few devices whose driver we just changed (a release), so the next allocation
   *  does not see them as they were while a guest had them. */
  async refresh(bdfs: readonly string[]): Promise<void> {
    if (bdfs.length === 0 || !this.#inv) return;
    // Only those functions, keeping every other one's object (and a VF's index: reading a VF
    // alone would list its PF's 256 virtfn links to find it).
    const base = this.#inv;
    const inv = await refreshInventory(this.#kernel.sysfs, await base, bdfs);
    // A newer read of the watcher's came meanwhile: it is newer than ours, keep it.
    if (this.#inv === base) this.update(inv);
  }

  /** The PF, VF index and PF netdev of a VF (libvirt's choice of PF netdev); undefined when the
   *  device is no VF. */
  vfOf(address: PciAddress): Promise<VfOf | undefined> {
    return vfOf(this.#kernel.sysfs, address);
  }

  /** The NUMA node a PCI device sits on (its numa_node), undefined when it has none. */
  async deviceNode(bdf: string): Promise<number | undefined> {
    const n = Number((await this.#kernel.sysfs.read(`/sys/bus/pci/devices/${bdf}/numa_node`))?.trim());
    return Number.isInteger(n) && n >= 0 ? n : undefined;
  }

  /** The memory nodes of this machine for host NUMA nodes: the same nodes on linux; on the sim,
   *  whose nodes have no memory of their own, the real nodes of the CPUs its profile maps them
   *  to (numaCpus), so QEMU's memory policy names nodes this machine has. */
  async memoryNodes(nodes: readonly number[]): Promise<number[]> {
    if (this.#kernel.backend === 'linux') return [...nodes];
    const [sim, real] = await Promise.all([this.cpuNodes(), readCpuNodes(new DirSysfs('/'))]);
    const out = new Set<number>();
    for (const [cpu, n] of sim) {
      const r = real.get(cpu);
      if (nodes.includes(n) && r !== undefined) out.add(r);
    }
    return [...out].sort((a, b) => a - b);
  }

  /** Host CPU -> NUMA node; CPUs do not come and go under a running daemon. */
  cpuNodes(): Promise<Map<number, number>> {
    this.#cpuNodes ??= readCpuNodes(this.#kernel.sysfs);
    return this.#cpuNodes;
  }
}
