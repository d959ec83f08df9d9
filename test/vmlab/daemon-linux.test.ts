import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { before, test } from 'node:test';

/**
 * passthrud --host linux on a real kernel, one VM-lab boot per test (igb + intel-iommu, real
 * vfio-pci); the steps are in guest/*-checks.sh, here only the CHECK lines they print are read.
 * Both run the built daemon and CLI (dist/), as installed; it is built once here, before any
 * guest reads it (two builds at once, or one while a guest reads dist/, would race).
 */
const REPO = join(import.meta.dirname, '../..');
const MiB = 1024 * 1024;

before(() => {
  const setup = spawnSync('bash', [join(REPO, 'scripts/vmlab-setup.sh')], { encoding: 'utf8' });
  assert.equal(setup.status, 0, `vmlab-setup.sh failed:\n${setup.stderr}`);
  const build = spawnSync('npm', ['run', '--silent', 'build'], { cwd: REPO, encoding: 'utf8' });
  assert.equal(build.status, 0, `npm run build failed:\n${build.stdout}${build.stderr}`);
});

/** Boots the lab with the repository shared read-only, runs a guest script, returns its CHECKs. */
function labChecks(label: string, script: string): (name: string) => string {
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
      '--script',
      join(REPO, 'test/vmlab/guest', script),
    ],
    { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  );
  console.log(`# vmlab ${label}: wall ${((Date.now() - t0) / 1000).toFixed(1)} s, exit ${run.status}`);
  const checks = new Map<string, string>();
  // All of them in the test's output: one lab run shows every step, not only the first failure.
  for (const line of run.stdout.split('\n').filter((l) => /^(CHECK|TIME) /.test(l))) console.log(`# ${line}`);
  for (const line of run.stdout.split('\n')) {
    const m = /^CHECK (\S+) ?(.*)$/.exec(line);
    if (m?.[1]) checks.set(m[1], (m[2] ?? '').trim());
  }
  return (k) => {
    const v = checks.get(k);
    assert.ok(
      v !== undefined,
      `no CHECK ${k} (exit ${run.status}):\n${run.stdout.slice(-3000)}\n${run.stderr.slice(-2000)}`,
    );
    return v;
  };
}

/** daemon-checks.sh runs once (one lab boot) for the two tests that read it. */
let daemonRun: ((name: string) => string) | undefined;
const daemonChecks = (): ((name: string) => string) => {
  daemonRun ??= labChecks('daemon', 'daemon-checks.sh');
  return daemonRun;
};

test('VM lab: the daemon on the real kernel starts and destroys a domain holding an igb VF', {
  timeout: 1_200_000,
}, () => {
  const get = daemonChecks();
  assert.equal(get('daemon'), '1', 'passthrud answered on its socket');
  const [macBefore, vlanBefore, driverBefore] = get('before').split(' ');
  assert.deepEqual([vlanBefore, driverBefore], ['0', 'igbvf']);
  assert.equal(get('nodedev'), '1', 'nodedev-list shows the VF');
  assert.equal(get('define'), '0');
  assert.equal(get('start'), '0');
  assert.equal(get('running'), '52:54:00:00:00:01 42 vfio-pci');
  assert.ok(Number(get('livexml')) >= 1, 'the live XML shows a guest PCI address');
  assert.match(get('second'), /^1 .*VF \S+ of PF \S+ is in use by domain vmlab1/);
  assert.equal(get('stillrunning'), '52:54:00:00:00:01 42 vfio-pci');
  assert.equal(get('destroy'), '0');
  assert.equal(get('after'), `${macBefore} 0 igbvf`);
  assert.equal(get('log'), '0', 'the daemon logged no errors');
});

test('VM lab: hostdev-hybrid on an igb VF: a real macvtap on the PF, the failover pair in QEMU, the admin MAC moved off the VF and back', {
  timeout: 1_200_000,
}, () => {
  const get = daemonChecks();
  const mac = '52:54:00:00:0b:01';
  const macBefore = '02:00:00:0b:00:01'; // set by the script before the daemon takes VF 0
  assert.equal(get('hybrid-before'), `${macBefore} igbvf`);
  assert.equal(get('hybrid-define'), '0');
  assert.equal(get('hybrid-start'), '0');
  // One macvtap, in bridge mode, on the igb PF's netdev, with the guest's MAC; QEMU holds its
  // /dev/tapN (the daemon opened it and handed the descriptor over).
  const pf = get('hybrid-netdev');
  const taps = get('hybrid-macvtap').split(';');
  assert.equal(taps.length, 1, get('hybrid-macvtap'));
  const [, mode, parent, address, ifindex] = (taps[0] ?? '').split(' ');
  assert.deepEqual([mode, parent, address], ['bridge', pf, mac]);
  assert.match(ifindex ?? '', /^\d+$/);
  assert.equal(get('hybrid-tapfd'), '1', `QEMU holds /dev/tap${ifindex ?? ''} open`);
  // QEMU runs the pair: a virtio standby with failover, the VF as its primary.
  assert.match(get('hybrid-failover'), /^1 "failover_pair_id":"\S+"$/);
  // The VF is on vfio-pci with the guest's MAC as its admin MAC (the real igb VF table).
  assert.equal(get('hybrid-running'), `${mac} vfio-pci`);
  assert.equal(get('hybrid-domiflist'), '2', 'domiflist: the standby and the VF, one MAC');
  // The linux Datapath: off the VF (igb takes the all-zero MAC), then back on it.
  assert.equal(get('steer-note-standby'), '00:00:00:00:00:00 00:00:00:00:00:00');
  assert.equal(get('steer-standby'), 'standby 00:00:00:00:00:00');
  assert.equal(get('steer-note-vf'), `${mac} ${mac}`);
  assert.equal(get('steer-vf'), `vf0 ${mac}`);
  assert.equal(get('hybrid-steered'), `${mac} vfio-pci`);
  // Destroy: the macvtap is gone, VF 0 is back on igbvf with the admin MAC it had.
  assert.equal(get('hybrid-destroy'), '0');
  assert.equal(get('hybrid-after'), `${macBefore} igbvf`);
  assert.equal(get('hybrid-macvtap-after'), 'none');
  assert.equal(get('log'), '0', 'the daemon logged no errors');
});

test('VM lab: --qemu-user: QEMU owns /dev/vfio/N while it runs, under the locked-memory limit; root owns it after', {
  timeout: 1_200_000,
}, () => {
  const get = labChecks('qemu-user', 'qemu-user-checks.sh');
  const user = get('user');
  const [uid, gid] = user.split(':');
  assert.match(user, /^[1-9]\d*:[1-9]\d*$/);
  const [vf1Mac, vf1Driver] = get('vf1-before').split(' ');
  assert.equal(vf1Driver, 'igbvf');
  assert.equal(get('daemon'), '1', 'passthrud answered on its socket');
  assert.equal(get('detach'), '0');
  assert.equal(get('before'), '0:0 600 vfio-pci', 'vfio made the node root-only');
  assert.equal(get('vfio-container'), '666', '/dev/vfio/vfio is everyone’s; only the group nodes are lent');

  // Started holding VF0: QEMU runs as the user (real, effective, saved and fs ids; no
  // capabilities), owns the group's node, holds it open with a realized vfio device, and vfio
  // pinned the guest's RAM under the limit set before QEMU ran (128 MiB + 1 GiB).
  const ids = `${uid} ${uid} ${uid} ${uid} / ${gid} ${gid} ${gid} ${gid} cap 0000000000000000`;
  assert.equal(get('define1'), '0');
  assert.equal(get('start1'), '0');
  assert.equal(get('ids1'), ids, 'QEMU runs as the QEMU user');
  assert.equal(get('running1'), `${user} 600`, "QEMU's user owns the VF's /dev/vfio/N, mode kept");
  assert.equal(get('fds1'), '1 1', 'QEMU holds the group and a vfio device open');
  assert.equal(get('limits1'), `${(128 + 1024) * MiB} ${(128 + 1024) * MiB}`);
  assert.ok(Number(get('vmlck1')) >= 128 * 1024, `VmLck ${get('vmlck1')} kB: vfio pinned the guest's RAM`);
  assert.equal(get('enable1'), '1', 'vfio-pci enabled the VF for QEMU');

  // Started with no host device: the default limit, below the guest's RAM. A hot-plug of a VF
  // raises it before device_add; without that, vfio could not pin the RAM and QEMU would refuse.
  assert.equal(get('define2'), '0');
  assert.equal(get('start2'), '0');
  assert.equal(get('ids2'), ids);
  const [soft, hard] = get('limits2').split(' ').map(Number);
  assert.ok(soft !== undefined && soft < 128 * MiB && hard !== undefined && hard < 128 * MiB, get('limits2'));
  assert.equal(get('attach'), '0');
  assert.equal(get('attached'), `${user} 600 vfio-pci 52:54:00:00:0c:02`, "the hot-plugged VF's group is lent");
  assert.equal(get('fds2'), '1 1', 'QEMU opened the hot-plugged group and realized the device');
  assert.equal(get('limits2-attached'), `${(128 + 1024) * MiB} ${(128 + 1024) * MiB}`);
  assert.ok(Number(get('vmlck2')) >= 128 * 1024, `VmLck ${get('vmlck2')} kB: vfio pinned the guest's RAM`);

  // Destroyed: the managed VF is back on igbvf with its MAC (its group node went with vfio-pci);
  // the other node is root's again with its mode, and the owner ledger is empty.
  assert.equal(get('destroy2'), '0');
  assert.equal(get('after2'), `none ${vf1Mac} igbvf`);
  assert.equal(get('destroy1'), '0');
  assert.equal(get('after1'), '0:0 600 vfio-pci', 'root owns the node again, mode 0600');
  assert.equal(get('ledger'), '0');

  // Two VFs behind the guest's intel vIOMMU: each has its own DMA address space, so the limit is
  // counted per device (2 x (128 MiB + 1 GiB)), and vfio pinned the guest's RAM once per device.
  assert.equal(get('define3'), '0');
  assert.equal(get('start3'), '0');
  assert.equal(get('viommu3'), '"driver":"intel-iommu","id":"iommu0","caching-mode":true');
  assert.equal(get('fds3'), '2', 'QEMU realized both VFs');
  assert.equal(get('limits3'), `${2 * (128 + 1024) * MiB} ${2 * (128 + 1024) * MiB}`);
  assert.ok(Number(get('vmlck3')) >= 2 * 128 * 1024, `VmLck ${get('vmlck3')} kB: the RAM pinned for each VF`);
  assert.equal(get('destroy3'), '0');
  assert.equal(get('after3'), '0:0 600 vfio-pci igbvf', 'VF0 detached and root’s again, VF1 back on igbvf');
  assert.equal(get('ledger3'), '0');

  // The kernel enforces the limit for this user: the same VF and RAM under 16 MiB fails.
  const [lowRc, ...why] = get('toolow').split(' ');
  assert.notEqual(lowRc, '0', 'a limit below the guest RAM must not start');
  assert.notEqual(lowRc, '124', 'QEMU with the low limit must fail, not hang');
  assert.match(why.join(' '), /vfio_dma_map|Cannot allocate memory/);
  assert.equal(get('reattach'), '0');
  assert.equal(get('reattached'), 'igbvf');
  assert.equal(get('log'), '0', 'the daemon logged no errors');
});
