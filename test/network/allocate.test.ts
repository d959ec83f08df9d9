import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PassthruError } from '../../src/conf/error.ts';
import { type PoolFacts, chooseMember } from '../../src/network/allocate.ts';
import { memberProblem } from '../../src/network/health.ts';
import type { HostView, Member } from '../../src/network/members.ts';
import { readInventory } from '../../src/host/inventory.ts';
import { hostView } from '../../src/network/members.ts';
import { simHost } from '../host/helpers.ts';

const vf = (pfBus: number, index: number, numaNode: number, tags: string[] = []): Member => ({
  address: { domain: 0, bus: pfBus, slot: 2 + (index >> 3), function: index & 7 },
  bdf: `0000:${pfBus.toString(16).padStart(2, '0')}:${(2 + (index >> 3)).toString(16).padStart(2, '0')}.${index & 7}`,
  present: true,
  driver: 'iavf',
  numaNode,
  vf: { pf: { domain: 0, bus: pfBus, slot: 0, function: 0 }, pfNetdev: `p${pfBus}`, index },
  tags,
});

// Two PFs: bus 0x10 on node 0, bus 0x20 on node 1; listed out of order on purpose.
const MEMBERS = [vf(0x20, 1, 1), vf(0x10, 3, 0, ['fast']), vf(0x20, 0, 1, ['fast']), vf(0x10, 2, 0)];
const ref = { kind: 'network', name: 'vfs' } as const;
const facts = (held: string[] = [], quarantined: string[] = [], sick: string[] = []): PoolFacts => ({
  holder: (bdf) => (held.includes(bdf) ? 'other' : undefined),
  quarantined: (bdf) => quarantined.includes(bdf),
  problem: (m) => (sick.includes(m.bdf) ? `VF ${m.bdf} is not present on the host` : undefined),
});
const none = new Set<number>();

test('lowest PF, then lowest VF index, whatever the member order', () => {
  assert.equal(chooseMember(ref, MEMBERS, facts(), { numaNodes: none }).bdf, '0000:10:02.2');
  assert.equal(chooseMember(ref, MEMBERS, facts(['0000:10:02.2']), { numaNodes: none }).bdf, '0000:10:02.3');
  assert.equal(
    chooseMember(ref, MEMBERS, facts(['0000:10:02.2'], ['0000:10:02.3']), { numaNodes: none }).bdf,
    '0000:20:02.0',
  );
});

test("the guest's NUMA node first, then the order", () => {
  assert.equal(chooseMember(ref, MEMBERS, facts(), { numaNodes: new Set([1]) }).bdf, '0000:20:02.0');
  assert.equal(
    chooseMember(ref, MEMBERS, facts(['0000:20:02.0', '0000:20:02.1']), { numaNodes: new Set([1]) }).bdf,
    '0000:10:02.2',
    'a far VF rather than none',
  );
});

test('required tags, and the "none available" error with why', () => {
  assert.equal(chooseMember(ref, MEMBERS, facts(), { numaNodes: none, requireTags: ['fast'] }).bdf, '0000:10:02.3');
  assert.throws(
    () =>
      chooseMember(ref, MEMBERS, facts(['0000:10:02.2'], ['0000:10:02.3'], ['0000:20:02.0']), {
        numaNodes: none,
        requireTags: ['fast'],
      }),
    (e: unknown) =>
      e instanceof PassthruError &&
      e.code === 'DEVICE_IN_USE' &&
      e.message === "network 'vfs' requires exclusive access to interfaces, but none are available" &&
      e.hint ===
        "4 members, 1 in use, 1 quarantined (release with 'passthru nodedev-release ADDR'), 1 without the tags fast, 1 failing the health check (VF 0000:20:02.0 is not present on the host)",
  );
  assert.throws(
    () => chooseMember({ kind: 'devicepool', name: 'gpus' }, [], facts(), { numaNodes: none }),
    /^PassthruError: device pool 'gpus' requires exclusive access to devices, but none are available$/,
  );
});

test('health: present, expected driver, PF link up', async () => {
  const host = await simHost();
  try {
    const inv = await readInventory(host.kernel.sysfs);
    const view = hostView(inv);
    const m = (bdf: string, v: HostView = view): Member => {
      const d = v.byBdf.get(bdf);
      assert.ok(d?.physfn);
      return {
        address: d.address,
        bdf,
        present: true,
        ...(d.driver ? { driver: d.driver } : {}),
        vf: { pf: d.physfn.pf, pfNetdev: 'enp6s0f0', index: d.physfn.index },
        tags: [],
      };
    };
    const managed = { managed: true, stub: 'vfio-pci' };
    assert.equal(memberProblem(m('0000:06:02.0'), view, managed), undefined);
    assert.equal(
      memberProblem({ ...m('0000:06:02.0'), present: false }, view, managed),
      'VF 0000:06:02.0 is not present on the host',
    );
    assert.equal(
      memberProblem({ ...m('0000:06:02.0'), driver: 'vfio-pci' }, view, managed),
      'VF 0000:06:02.0 is bound to vfio-pci outside the pool (nodedev-detach?)',
    );
    assert.equal(
      memberProblem(m('0000:06:02.0'), view, { managed: false, stub: 'vfio-pci' }),
      'VF 0000:06:02.0 is on driver iavf, not vfio-pci (an unmanaged pool takes devices already detached)',
    );
    const down = hostView({
      devices: inv.devices.map((d) =>
        d.name === '0000:06:00.0' ? { ...d, netdevs: d.netdevs.map((n) => ({ ...n, operstate: 'down' })) } : d,
      ),
    });
    assert.equal(
      memberProblem(m('0000:06:02.0', down), down, managed),
      'VF 0000:06:02.0: the link of its PF enp6s0f0 is down',
    );
  } finally {
    host.done();
  }
});
