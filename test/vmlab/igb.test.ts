import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { rngProblem } from '../conf/conformance/libvirt.ts';

/**
 * The real-kernel tier: one boot of Debian's kernel under QEMU 10 (bookworm-backports) with an
 * igb NIC behind a root port and intel-iommu; inside it, test/vmlab/guest/igb-checks.ts drives
 * passthru's linux backend against the real igb, igbvf, vfio-pci and rtnetlink, and reports.
 * `scripts/vmlab-setup.sh` installs what it needs first (idempotent; ~2 s when done before).
 */
const REPO = join(import.meta.dirname, '../..');

interface Failure {
  readonly error: { readonly code: string; readonly errno?: string; readonly message: string };
}
type Step<T> = T | Failure;

function ok<T>(name: string, v: Step<T> | undefined): T {
  assert.ok(v !== undefined, `step ${name} did not run`);
  if (typeof v === 'object' && v !== null && 'error' in v) {
    assert.fail(`step ${name} failed: ${(v).error.code} ${(v).error.message}`);
  }
  return v;
}

interface Result {
  readonly fatal?: string;
  readonly rtnl: string;
  readonly pf: { name: string; driver: string; totalVfs: number };
  readonly sriov: Step<{
    before: number;
    after: number;
    settled: boolean;
    vfs: {
      index: number;
      name: string;
      physfnIndex: number;
      group: number;
      groupSize: number;
      driver: string;
      netdevs: string[];
    }[];
  }>;
  readonly watch: Step<{ added: string[]; pfChanged: boolean }>;
  readonly nodedev: Step<{ pf?: string; vf?: string; count: number }>;
  readonly vfOf: Step<{ pfNetdev: string; index: number }>;
  readonly setVf: Step<{ table: Record<string, unknown>[]; ipJ: Record<string, unknown>[] }>;
  readonly refused: Step<Record<string, Failure['error']>>;
  readonly iproute2: Step<{ rtnl: string; row3: Record<string, unknown>; proto: Failure['error'] }>;
  readonly detach: Step<{
    changed: boolean;
    previousDriver: string;
    driver: string;
    netdevsAfter: string[];
    devVfio: boolean;
  }>;
  readonly nestedQemu: Step<{ vfioDevice: boolean; status: string; realized: boolean; host: string }>;
  readonly release: Step<{ driver: string; mac: string; originalMac: string }>;
  readonly sriovOff: Step<{ after: number; vfs: number }>;
  readonly totalMs: number;
}

test('VM lab: the linux backend on a real kernel with an igb NIC (one boot)', { timeout: 1_200_000 }, () => {
  const setup = spawnSync('bash', [join(REPO, 'scripts/vmlab-setup.sh')], { encoding: 'utf8' });
  assert.equal(setup.status, 0, `vmlab-setup.sh failed:\n${setup.stderr}`);

  const t0 = Date.now();
  const run = spawnSync(
    'bash',
    [
      join(REPO, 'scripts/vmlab-run.sh'),
      '--iommu',
      '--igb',
      '--share',
      `${REPO}:/work/p:ro`,
      '--timeout',
      '900',
      'cd /work/p && node --import tsx test/vmlab/guest/igb-checks.ts',
    ],
    { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  );
  const wallS = (Date.now() - t0) / 1000;
  const line = run.stdout.split('\n').find((l) => l.startsWith('VMLAB-RESULT '));
  assert.ok(
    line,
    `the guest printed no result (exit ${run.status}):\n${run.stdout.slice(-3000)}\n${run.stderr.slice(-3000)}`,
  );
  const r = JSON.parse(line.slice('VMLAB-RESULT '.length)) as Result;
  console.log(`# vmlab: wall ${wallS.toFixed(1)} s, guest checks ${(r.totalMs / 1000).toFixed(1)} s, rtnl ${r.rtnl}`);
  assert.equal(r.fatal, undefined);
  assert.deepEqual([r.pf.driver, r.pf.totalVfs], ['igb', 7]);

  // nodedev-sriov 0 -> 7: seven igbvf VFs, each in its own IOMMU group with a netdev, by index.
  const sriov = ok('sriov', r.sriov);
  assert.deepEqual([sriov.before, sriov.after, sriov.settled], [0, 7, true]);
  assert.equal(sriov.vfs.length, 7);
  assert.equal(new Set(sriov.vfs.map((v) => v.group)).size, 7);
  for (const v of sriov.vfs) {
    assert.equal(v.physfnIndex, v.index);
    assert.equal(v.groupSize, 1);
    assert.equal(v.driver, 'igbvf');
    assert.equal(v.netdevs.length, 1);
  }
  // 82576 VFs interleave: offset 0x80, stride 2 from 01:00.0.
  assert.deepEqual(
    sriov.vfs.map((v) => v.name.slice(5)),
    ['01:10.0', '01:10.2', '01:10.4', '01:10.6', '01:11.0', '01:11.2', '01:11.4'],
  );
  assert.equal(ok('vfOf', r.vfOf).index, 3);
  // The inventory followed the change without a restart.
  const watch = ok('watch', r.watch);
  assert.deepEqual(
    watch.added,
    sriov.vfs.map((v) => v.name),
  );
  assert.equal(watch.pfChanged, true);
  // Node-device XML of the real PF and VF is valid libvirt nodedev XML.
  const nd = ok('nodedev', r.nodedev);
  assert.ok(nd.pf && nd.vf);
  for (const xml of [nd.pf, nd.vf]) assert.equal(rngProblem('nodedev.rng', xml), undefined, xml);
  assert.match(nd.pf, /<capability type='virt_functions' maxCount='7'>/);
  assert.match(nd.vf, /<capability type='phys_function'>/);

  // MAC / VLAN / spoofchk / trust read back, through our reader and through ip -j.
  const set = ok('setVf', r.setVf);
  for (const table of [set.table, set.ipJ]) {
    assert.deepEqual(
      [table[0]?.['mac'], table[0]?.['vlan'], table[0]?.['spoofchk'], table[0]?.['trust']],
      ['52:54:00:aa:bb:cc', 42, true, true],
    );
    assert.deepEqual(
      [table[1]?.['vlan'], table[1]?.['qos'], table[1]?.['spoofchk'], table[1]?.['trust'], table[1]?.['maxTxRate']],
      [43, 3, false, false, 100],
    );
  }
  // igb's refusals, as on 82576 hardware, each a clear error naming the VF and PF.
  const refused = ok('refused', r.refused);
  assert.deepEqual(
    [refused['proto8021ad']?.errno, refused['minTxRate']?.errno, refused['linkState']?.errno],
    ['EPROTONOSUPPORT', 'EINVAL', 'EOPNOTSUPP'],
  );
  for (const e of Object.values(refused)) assert.match(e.message, /on VF 2 of PF \S+/);
  // The iproute2 implementation writes, verifies and refuses alike.
  const ip = ok('iproute2', r.iproute2);
  assert.equal(ip.rtnl, 'iproute2');
  assert.deepEqual(
    [ip.row3['mac'], ip.row3['vlan'], ip.row3['qos'], ip.row3['trust']],
    ['52:54:00:00:00:33', 45, 1, true],
  );
  assert.equal(ip.proto.errno, 'EPROTONOSUPPORT');

  // nodedev-detach: vfio-pci, the netdev gone, /dev/vfio/N there; a nested QEMU takes it.
  const detach = ok('detach', r.detach);
  assert.deepEqual(
    [detach.changed, detach.previousDriver, detach.driver, detach.netdevsAfter, detach.devVfio],
    [true, 'igbvf', 'vfio-pci', [], true],
  );
  const nested = ok('nestedQemu', r.nestedQemu);
  assert.deepEqual([nested.vfioDevice, nested.status, nested.realized], [true, 'prelaunch', true]);
  // Release: igbvf back, with the MAC the VF had before.
  const release = ok('release', r.release);
  assert.equal(release.driver, 'igbvf');
  assert.equal(release.mac, release.originalMac);
  assert.deepEqual(ok('sriovOff', r.sriovOff), { after: 0, vfs: 0 });
});
