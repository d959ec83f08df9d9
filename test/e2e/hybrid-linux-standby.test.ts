import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import { netnsSkipReason, REPO_ROOT, requireE2e } from './helpers/env.ts';

/**
 * [seed 002] The standby of a hostdev-hybrid interface on the linux backend, against the real
 * kernel: in a network namespace this test makes, a veth stands in for the VF's PF (this
 * machine has no SR-IOV NIC, so the VF half cannot run here; the sim e2e test runs the whole
 * pair). The daemon's start pieces (daemon/hybrid.ts, daemon/host-nics.ts) run in a child inside
 * the namespace: a macvtap in bridge mode on the PF with the guest's MAC, its /dev/tapN open for
 * QEMU, named in the live XML, and gone after.
 */
const ns = `pt-hy-${process.pid}`;
const reason = netnsSkipReason();
if (reason !== undefined && requireE2e()) throw new Error(`PASSTHRU_REQUIRE_E2E=1 but: ${reason}`);
const skip = reason ?? false;
const ipn = (...args: string[]): string => execFileSync('ip', ['-n', ns, ...args], { encoding: 'utf8' });
interface Link {
  ifname: string;
  address: string;
  link?: string;
  linkinfo?: { info_kind?: string; info_data?: { mode?: string } };
}
const links = (): Link[] => JSON.parse(ipn('-j', '-d', 'link', 'show')) as Link[];

before(() => {
  if (skip) return;
  execFileSync('ip', ['netns', 'add', ns]);
  ipn('link', 'add', 'enp6s0f0', 'type', 'veth', 'peer', 'name', 'enp6s0f0p');
  ipn('link', 'set', 'enp6s0f0', 'up');
});
after(() => {
  if (!skip) execFileSync('ip', ['netns', 'del', ns]);
});

test('linux: the standby is a macvtap in bridge mode on the PF with the guest MAC, its fd for QEMU, removed at stop', {
  skip,
  timeout: 60_000,
}, async () => {
  const mac = '52:54:00:fa:55:01';
  const child = spawn(
    'ip',
    [
      'netns',
      'exec',
      ns,
      process.execPath,
      '--import',
      'tsx',
      join(REPO_ROOT, 'test/e2e/helpers/hybrid-standby-child.ts'),
      'enp6s0f0',
      mac,
    ],
    { stdio: ['pipe', 'pipe', 'inherit'], cwd: REPO_ROOT },
  );
  const out = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const first = await out.next();
  const plugged = JSON.parse(String(first.value)) as {
    xml: string;
    backends: [string, { type: string; fd?: string }][];
    fdIsCharDevice: boolean;
  };
  try {
    const mvt = links().find((l) => l.linkinfo?.info_kind === 'macvtap');
    assert.ok(
      mvt,
      `no macvtap in ${links()
        .map((l) => l.ifname)
        .join(' ')}`,
    );
    assert.equal(mvt.linkinfo?.info_data?.mode, 'bridge');
    assert.equal(mvt.address, mac);
    assert.equal(mvt.link, 'enp6s0f0', 'on the PF');
    // QEMU gets an open /dev/tapN as the standby's backend, as for a direct NIC.
    assert.equal(plugged.fdIsCharDevice, true);
    assert.deepEqual(plugged.backends, [['net0', { type: 'tap', fd: '3' }]]);
    assert.match(
      plugged.xml,
      new RegExp(`<standby>\\s*<source dev='enp6s0f0' mode='bridge'/>\\s*<target dev='${mvt.ifname}'/>`),
    );
  } finally {
    child.stdin.write('stop\n');
  }
  assert.equal((await out.next()).value, 'unplugged');
  assert.equal(
    links().some((l) => l.linkinfo?.info_kind === 'macvtap'),
    false,
    'the macvtap is gone',
  );
});
