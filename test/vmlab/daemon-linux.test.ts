import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';

/**
 * passthrud --host linux on a real kernel (one VM-lab boot, igb + intel-iommu): a domain with an
 * <interface type='hostdev'> on an igb VF starts (the VF on vfio-pci, its admin MAC and VLAN
 * programmed on the real PF), a second domain on the same VF is refused and changes nothing,
 * destroy gives the VF back to igbvf with the MAC and VLAN it had. The steps are in
 * guest/daemon-checks.sh; here only the CHECK lines it prints are read.
 */
const REPO = join(import.meta.dirname, '../..');

test('VM lab: the daemon on the real kernel starts and destroys a domain holding an igb VF', {
  timeout: 1_200_000,
}, () => {
  const setup = spawnSync('bash', [join(REPO, 'scripts/vmlab-setup.sh')], { encoding: 'utf8' });
  assert.equal(setup.status, 0, `vmlab-setup.sh failed:\n${setup.stderr}`);
  // The lab runs the built daemon and CLI (dist/), as installed: see guest/daemon-checks.sh.
  const build = spawnSync('npm', ['run', '--silent', 'build'], { cwd: REPO, encoding: 'utf8' });
  assert.equal(build.status, 0, `npm run build failed:\n${build.stdout}${build.stderr}`);
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
      join(REPO, 'test/vmlab/guest/daemon-checks.sh'),
    ],
    { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  );
  console.log(`# vmlab daemon: wall ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const checks = new Map<string, string>();
  for (const line of run.stdout.split('\n')) {
    const m = /^CHECK (\S+) ?(.*)$/.exec(line);
    if (m?.[1]) checks.set(m[1], (m[2] ?? '').trim());
  }
  const get = (k: string): string => {
    const v = checks.get(k);
    assert.ok(
      v !== undefined,
      `no CHECK ${k} (exit ${run.status}):\n${run.stdout.slice(-3000)}\n${run.stderr.slice(-2000)}`,
    );
    return v;
  };
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
