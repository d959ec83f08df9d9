/**
 * Runs INSIDE the VM-lab guest (daemon-checks.sh), beside a running hostdev-hybrid domain: the
 * linux Datapath (src/host/datapath.ts, what the daemon calls on QEMU's failover events) moves
 * the guest MAC on the real igb PF as a failover migration does: off the VF to the standby
 * (UNPLUG_PRIMARY on the source), then back on the VF (FAILOVER_NEGOTIATED on the
 * destination). The nested guest does not boot, so QEMU never sends those events here. After
 * each move the PF's VF table is read with iproute2 (not through passthru) and printed as
 * "CHECK steer-<to> <target> <admin MAC>". Arguments: PF netdev, VF index, VF address, MAC.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

// The built modules (dist/, as the daemon in the lab runs), with the sources' types: tsx then
// compiles this file only, not the ~25 modules under it (seconds each under TCG).
const DIST = join(import.meta.dirname, '../../../dist/src');
const { parsePciAddress } = (await import(
  join(DIST, 'conf/pci-address.js')
)) as typeof import('../../../src/conf/pci-address.ts');
const { adminMacDatapath } = (await import(
  join(DIST, 'host/datapath.js')
)) as typeof import('../../../src/host/datapath.ts');
const { openLinuxHost } = (await import(
  join(DIST, 'host/linux/kernel.js')
)) as typeof import('../../../src/host/linux/kernel.ts');

const [pf = '', index = '', bdf = '', mac = ''] = process.argv.slice(2);

function adminMac(): string {
  const links = JSON.parse(execFileSync('ip', ['-j', '-d', 'link', 'show', pf], { encoding: 'utf8' })) as {
    vfinfo_list?: { vf: number; address: string }[];
  }[];
  return links[0]?.vfinfo_list?.find((v) => v.vf === Number(index))?.address ?? 'none';
}

const dp = adminMacDatapath(await openLinuxHost(), (n) =>
  console.log(`CHECK steer-note-${n.to.startsWith('vf') ? 'vf' : n.to} ${n.asked} ${n.wrote}`),
);
const moves = [
  ['standby', 'UNPLUG_PRIMARY'],
  ['vf', 'FAILOVER_NEGOTIATED'],
] as const;
for (const [to, reason] of moves) {
  try {
    console.log(`CHECK steer-${to} ${await dp.steer(parsePciAddress(bdf), mac, to, reason)} ${adminMac()}`);
  } catch (err) {
    console.log(`CHECK steer-${to} error ${(err as Error).message}`);
  }
}
process.exit(0);
