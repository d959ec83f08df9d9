import { accessSync, constants, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseMac } from '../../src/conf/mac.ts';
import { readInventory, refreshInventory } from '../../src/host/inventory.ts';
import { parseLinkShow } from '../../src/host/linux/iproute2.ts';
import { decodeVf, encodeVf } from '../../src/host/linux/netlink.ts';
import { createSimHost } from '../../src/host/sim/create.ts';
import { openSimHost } from '../../src/host/sim/kernel.ts';
import { DirSysfs } from '../../src/host/sysfs.ts';
import { diffInventory, watchHost } from '../../src/host/watch.ts';
import { type Figure, repeat, samples } from '../lib/figure.ts';

/**
 * Host-layer figures on scale-16x256 (16 PFs x 256 VFs, 4,128 PCI functions, 4,112 netdevs),
 * whose tree goes to /dev/shm when it can (a real /sys is in memory too).
 */
function base(): string {
  try {
    accessSync('/dev/shm', constants.W_OK);
    return '/dev/shm';
  } catch {
    return tmpdir();
  }
}

let host: { root: string; dir: string } | undefined;
async function scaleHost(): Promise<string> {
  if (!host) {
    const dir = mkdtempSync(join(base(), 'passthru-bench-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    host = { dir, root: join(dir, 'host') };
    await createSimHost(host.root, 'scale-16x256');
  }
  return host.root;
}

const netlinkRows = Array.from({ length: 256 }, (_, vf) => ({
  ...encodeVf(vf, {
    mac: parseMac(
      `52:54:00:00:${(vf >> 8).toString(16).padStart(2, '0')}:${(vf & 0xff).toString(16).padStart(2, '0')}`,
    ),
  }),
  ...encodeVf(vf, { vlan: { id: vf % 4096, qos: 0 } }),
  ...encodeVf(vf, { spoofchk: true }),
  ...encodeVf(vf, { trust: false }),
  ...encodeVf(vf, { rate: { minTx: 0, maxTx: 0 } }),
}));

const ipJson = JSON.stringify([
  {
    ifname: 'ens7f0',
    vfinfo_list: Array.from({ length: 256 }, (_, vf) => ({
      vf,
      link_type: 'ether',
      address: '52:54:00:00:00:01',
      vlan_list: [{ vlan: vf }],
      rate: { max_tx: 0, min_tx: 0 },
      spoofchk: true,
      link_state: 'auto',
      trust: false,
    })),
  },
]);

export default [
  {
    id: 'inventory.cold',
    title: 'inventory, cold: scale-16x256 (4,128 functions)',
    target: { max: 250, text: '<= 250 ms' },
    measure: async (ctx) => {
      const root = await scaleHost();
      // A fresh Sysfs each round: nothing of the previous read is reused.
      let first = 0;
      const xs = await repeat(ctx.rounds(7), async () => {
        const inv = await readInventory(new DirSysfs(root));
        first ||= inv.devices.length;
      });
      ctx.note(`${first} functions read; tree under ${base()}`);
      return samples('ms', xs);
    },
  },
  {
    id: 'inventory.cold.floor',
    title: "inventory, cold: the same file reads alone, as bare synchronous calls (the machine's floor)",
    measure: async (ctx) => {
      const root = await scaleHost();
      // Record what one inventory reads, then replay exactly those calls with nothing around
      // them: no parsing, no promises. What is left between this and inventory.cold is ours.
      const ops: (() => unknown)[] = [];
      class Recording extends DirSysfs {
        override read(p: string) {
          const at = this.at(p);
          ops.push(() => readFileSync(at, 'utf8'));
          return super.read(p);
        }
        override readBytes(p: string) {
          const at = this.at(p);
          ops.push(() => readFileSync(at));
          return super.readBytes(p);
        }
        override readLink(p: string) {
          const at = this.at(p);
          ops.push(() => readlinkSync(at));
          return super.readLink(p);
        }
        override list(p: string) {
          const at = this.at(p);
          ops.push(() => readdirSync(at));
          return super.list(p);
        }
      }
      const probe = new Recording(root);
      await readInventory(probe);
      const xs = await repeat(ctx.rounds(7), () => {
        for (const op of ops) {
          try {
            op();
          } catch {
            // an absent attribute, as in the inventory
          }
        }
      });
      ctx.note(`${ops.length} calls (read, readlink, readdir) of one inventory, replayed`);
      return samples('ms', xs);
    },
  },
  {
    id: 'inventory.change',
    title: 'one VF changes (driver_override): until the watcher reports it, on scale-16x256',
    target: { max: 5, text: '<= 5 ms' },
    measure: async (ctx) => {
      const kernel = await openSimHost(await scaleHost());
      const vf = '0000:10:02.4';
      let seen: (() => void) | undefined;
      const w = await watchHost(kernel, (changes) => {
        if (changes.some((c) => c.name === vf)) seen?.();
      });
      try {
        // From the moment the kernel operation returned to the watcher's report of it (the
        // sim's own write is not ours to count).
        const xs: number[] = [];
        for (let i = 0; i < ctx.rounds(15) + 1; i++) {
          const reported = new Promise<void>((r) => (seen = r));
          await kernel.writeSysfs(`/sys/bus/pci/devices/${vf}/driver_override`, i % 2 === 0 ? 'vfio-pci' : '\n');
          const t = performance.now();
          await reported;
          if (i > 0) xs.push(performance.now() - t);
        }
        ctx.note('inotify on the sim change log, then one VF re-read and diffed');
        return samples('ms', xs);
      } finally {
        w.stop();
      }
    },
  },
  {
    id: 'inventory.refresh-one',
    title: 'one VF re-read and diffed against 4,128 functions (refreshInventory + diff)',
    measure: async (ctx) => {
      const sysfs = new DirSysfs(await scaleHost());
      const before = await readInventory(sysfs);
      return samples(
        'ms',
        await repeat(ctx.rounds(15), async () =>
          diffInventory(before, await refreshInventory(sysfs, before, ['0000:10:02.4'])),
        ),
      );
    },
  },
  {
    id: 'host.vf-table.sim',
    title: '256-VF table through the sim kernel',
    measure: async (ctx) => {
      const kernel = await openSimHost(await scaleHost());
      return samples('ms', await repeat(ctx.rounds(7), () => kernel.vfTable('ens7f0')));
    },
  },
  {
    id: 'host.vf-table.netlink-decode',
    title: '256-VF table: decoding the rtnetlink structs (linux, without the kernel)',
    measure: async (ctx) =>
      samples(
        'ms',
        await repeat(ctx.rounds(7), () => {
          for (let i = 0; i < 10; i++) netlinkRows.map(decodeVf);
        }).then((xs) => xs.map((x) => x / 10)),
      ),
  },
  {
    id: 'host.vf-table.ip-json',
    title: '256-VF table: parsing `ip -j link show` (linux fallback, without the kernel)',
    measure: async (ctx) =>
      samples(
        'ms',
        await repeat(ctx.rounds(7), () => {
          for (let i = 0; i < 10; i++) parseLinkShow(ipJson, '', 'ens7f0');
        }).then((xs) => xs.map((x) => x / 10)),
      ),
  },
] satisfies Figure[];
