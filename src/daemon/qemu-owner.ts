import { chmod, open } from 'node:fs/promises';
import { join } from 'node:path';
import type { DomainDef } from '../conf/domain/types.ts';
import type { PciAddress } from '../conf/pci-address.ts';
import { diskImages } from '../host/disk-images.ts';
import type { Sysfs } from '../host/types.ts';
import { vfioGroupNode } from '../host/vfio-node.ts';
import { type Lent, OwnerLedger } from '../lib/owners.ts';
import { chardevFiles, type QemuUser } from '../qemu/run-as.ts';

/** A host device of a domain, as the ledger names its holder. */
export interface OwnedDevice {
  readonly alias: string;
  readonly address: PciAddress;
}

/**
 * What an unprivileged QEMU (`--qemu-user`) is given to own while it runs, libvirt's DAC
 * labelling: its run directory (QMP socket, pid file, console socket), its disk images and the
 * files of its serial ports, for the domain as a whole; the /dev/vfio/N of each host device's
 * IOMMU group, per device (a hot-unplug gives back one device's group, not the domain's).
 * Everything goes back to its recorded owner when QEMU is gone (OwnerLedger: crash-safe). Without
 * a QEMU user every method does nothing: QEMU runs as root and owns what root owns.
 */
export class QemuOwnership {
  readonly user: QemuUser | undefined;
  readonly #ledger: OwnerLedger | undefined;
  readonly #sysfs: Sysfs;

  private constructor(user: QemuUser | undefined, ledger: OwnerLedger | undefined, sysfs: Sysfs) {
    this.user = user;
    this.#ledger = ledger;
    this.#sysfs = sysfs;
  }

  /**
   * The ledger lives in the state directory; it is read even without a QEMU user, so a daemon
   * restarted without --qemu-user still gives back what an earlier one lent. With a user, the
   * state directory and run/ become searchable (0711, not listable) so QEMU reaches its own
   * run directory below them.
   */
  static async open(user: QemuUser | undefined, stateDir: string, sysfs: Sysfs): Promise<QemuOwnership> {
    const ledger = await OwnerLedger.open(join(stateDir, 'owners.json'));
    if (user) for (const dir of [stateDir, join(stateDir, 'run')]) await chmod(dir, 0o711);
    return new QemuOwnership(user, ledger, sysfs);
  }

  /** Before QEMU starts: the domain's files and its devices' groups. */
  async forStart(name: string, live: DomainDef, runDir: string, devices: readonly OwnedDevice[]): Promise<void> {
    if (!this.user || !this.#ledger) return;
    // QEMU could create a serial port's file only where its user may write: it is made here,
    // by root, and lent like the rest (libvirt opens it for QEMU the same way).
    for (const path of chardevFiles(live)) await (await open(path, 'a', 0o600)).close();
    const files: Lent[] = [
      { path: runDir, recursive: true },
      ...[...(await diskImages(live)).keys()].map((path) => ({ path })),
      ...chardevFiles(live).map((path) => ({ path })),
    ];
    await this.#ledger.take(name, files, this.user);
    await this.lendDevices(name, devices);
  }

  /** Before a hot-plug's device_add (and at start): each device's /dev/vfio/N. */
  async lendDevices(name: string, devices: readonly OwnedDevice[]): Promise<void> {
    if (!this.user || !this.#ledger) return;
    for (const d of devices) {
      const node = await vfioGroupNode(this.#sysfs, d.address);
      if (node !== undefined) await this.#ledger.take(deviceHolder(name, d.alias), [{ path: node }], this.user);
    }
  }

  /** After a hot-unplug the guest finished, or a hot-plug QEMU refused. */
  async giveDevices(name: string, aliases: readonly string[]): Promise<void> {
    for (const alias of aliases) await this.#ledger?.give(deviceHolder(name, alias));
  }

  /** QEMU is gone (stopped, crashed, failed to start): everything of the domain goes back. */
  async giveAll(name: string): Promise<void> {
    if (!this.#ledger) return;
    for (const h of this.#ledger.holders()) if (domainOf(h) === name) await this.#ledger.give(h);
  }

  /** After a daemon restart: what domains that no longer run still hold goes back. Returns them. */
  async recover(running: ReadonlySet<string>): Promise<string[]> {
    if (!this.#ledger) return [];
    const gone = [...this.#ledger.holders()].filter((h) => !running.has(domainOf(h)));
    for (const h of gone) await this.#ledger.give(h);
    return [...new Set(gone.map(domainOf))];
  }
}

/** libvirt refuses '/' in a domain name, so it separates the domain from the device. */
const deviceHolder = (name: string, alias: string): string => `${name}/${alias}`;
const domainOf = (holder: string): string => holder.split('/')[0] ?? holder;
