import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseMac } from '../src/conf/mac.ts';
import { readInventory } from '../src/host/inventory.ts';
import { parseLinkShow } from '../src/host/linux/iproute2.ts';
import { decodeVf, encodeVf } from '../src/host/linux/netlink.ts';
import { nodeDevices } from '../src/host/nodedev.ts';
import { createSimHost } from '../src/host/sim/create.ts';
import { openSimHost } from '../src/host/sim/kernel.ts';
import { DirSysfs } from '../src/host/sysfs.ts';

/**
 * Host-layer figures (issue 4), not pass/fail:
 *  - the cold inventory of scale-16x256 (16 PFs x 256 VFs = 4112 PCI functions, 4112 netdevs):
 *    the first readInventory through a fresh Sysfs, then the median of a few more;
 *  - reading a 256-VF table: through the sim kernel (its persisted table), and the parse cost of
 *    the linux paths for the same 256 rows (netlink structs, `ip -j` JSON) without the kernel.
 * The sim tree goes to /dev/shm when it can (a real /sys is in memory too).
 * Run: node --import tsx bench/host.ts   (or npm run bench -- host)
 */
function ms(t: number): string {
  return `${(performance.now() - t).toFixed(1)} ms`;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}

function base(): string {
  try {
    accessSync('/dev/shm', constants.W_OK);
    return '/dev/shm';
  } catch {
    return tmpdir();
  }
}

const dir = mkdtempSync(join(base(), 'passthru-bench-'));
try {
  const root = join(dir, 'host');
  let t = performance.now();
  const created = await createSimHost(root, 'scale-16x256');
  console.log(`scale-16x256: created ${created.devices} PCI functions in ${ms(t)} (under ${base()})`);

  t = performance.now();
  const inv = await readInventory(new DirSysfs(root));
  const cold = performance.now() - t;
  const vfs = inv.devices.filter((d) => d.physfn).length;
  console.log(`cold inventory: ${cold.toFixed(1)} ms for ${inv.devices.length} functions (${vfs} VFs)`);
  const warm: number[] = [];
  for (let i = 0; i < 3; i++) {
    t = performance.now();
    await readInventory(new DirSysfs(root));
    warm.push(performance.now() - t);
  }
  console.log(`inventory again: median ${median(warm).toFixed(1)} ms of ${warm.length}`);
  t = performance.now();
  const defs = nodeDevices(inv);
  console.log(`node devices: ${defs.length} definitions in ${ms(t)}`);

  const kernel = await openSimHost(root);
  const reads: number[] = [];
  let rows = 0;
  for (let i = 0; i < 5; i++) {
    t = performance.now();
    rows = (await kernel.vfTable('ens7f0')).length;
    reads.push(performance.now() - t);
  }
  console.log(`256-VF table, sim kernel: ${rows} rows, median ${median(reads).toFixed(2)} ms of ${reads.length}`);

  // The linux paths' own cost for 256 rows (the kernel's time is not in it).
  const raw = Array.from({ length: 256 }, (_, vf) => ({
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
  t = performance.now();
  for (let i = 0; i < 100; i++) raw.map(decodeVf);
  console.log(`256-VF table, netlink decode: ${((performance.now() - t) / 100).toFixed(3)} ms`);
  const json = JSON.stringify([
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
  t = performance.now();
  for (let i = 0; i < 100; i++) parseLinkShow(json, '', 'ens7f0');
  console.log(`256-VF table, ip -j parse: ${((performance.now() - t) / 100).toFixed(3)} ms`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
