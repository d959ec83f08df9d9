import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { e2eGuest } from './helpers/guest.ts';

/** The README's first command ends in `passthru quickstart`: it must show what it promises. */
const env = e2eGuest();

test('quickstart: the guest shows the programmed MAC, the live XML its address, the VF comes back', {
  skip: typeof env === 'string' ? env : false,
}, () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'quickstart'], {
    encoding: 'utf8',
    timeout: 300_000,
  });
  assert.equal(r.status, 0, r.stderr);
  const out = r.stdout;
  assert.match(out, /passthru-guest: nic \S+ mac 52:54:00:00:00:01 driver e1000e/);
  assert.match(out, /<alias name='hostdev0'\/>\n\s+<address type='pci' domain='0x0000' bus='0x0[1-9a-f]'/);
  const [during, restored] = out.split('== 7.');
  // nodedev-vfs columns: VF, address, port, PF netdev, netdev, admin MAC, VLAN, ..., driver, domain.
  assert.match(
    during ?? '',
    /^0\s+0000:06:02\.0\s+1\s+enp6s0f0\s+-\s+52:54:00:00:00:01\s+42\s.*\svfio-pci\s+quickstart$/m,
  );
  assert.match(
    restored ?? '',
    /^0\s+0000:06:02\.0\s+1\s+enp6s0f0\s+enp6s0f0v0\s+00:00:00:00:00:00\s+0\s.*\siavf\s+-$/m,
  );
});
