import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { PassthruError } from '../../src/conf/error.ts';
import type { MacAddress } from '../../src/conf/mac.ts';
import { ipLinkOps, LinuxNetdevs, linkinfoKind, macvtapLinkinfo } from '../../src/host/linux/netdev.ts';
import { tapHostMac } from '../../src/host/netdev.ts';
import { createSimHost } from '../../src/host/sim/create.ts';
import { openSimHost } from '../../src/host/sim/kernel.ts';
import { SimNetdevs } from '../../src/host/sim/netdev.ts';

const MAC = '52:54:00:aa:00:01' as MacAddress;

test('a macvtap IFLA_LINKINFO carries its kind and mode as the kernel lays them out', () => {
  const info = macvtapLinkinfo('bridge');
  assert.equal(linkinfoKind(info), 'macvtap');
  // IFLA_INFO_KIND (12 bytes) then IFLA_INFO_DATA { IFLA_MACVLAN_MODE = MACVLAN_MODE_BRIDGE (4) }.
  assert.equal(info.readUInt16LE(12 + 2), 2);
  assert.equal(info.readUInt32LE(12 + 8), 4);
  assert.equal(macvtapLinkinfo('passthrough').readUInt32LE(12 + 8), 8);
  assert.equal(linkinfoKind(undefined), undefined);
});

test("the host end of a tap has the guest's MAC with 0xfe first", () => {
  assert.equal(tapHostMac(MAC), 'fe:54:00:aa:00:01');
});

test('iproute2 link operations read the kind and say nothing for a missing link', async () => {
  const calls: string[][] = [];
  const ops = ipLinkOps((_file, args) => {
    calls.push([...args]);
    if (args.includes('br0'))
      return Promise.resolve({
        stdout: '[{"ifindex":7,"ifname":"br0","mtu":1400,"linkinfo":{"info_kind":"bridge"}}]',
        stderr: '',
      });
    return Promise.reject(Object.assign(new Error('failed'), { stderr: 'Device "nope" does not exist.' }));
  });
  assert.deepEqual(await ops.get('br0'), { name: 'br0', index: 7, kind: 'bridge', mtu: 1400 });
  assert.equal(await ops.get('nope'), undefined);
  await ops.addMacvtap('macvtap0', { name: 'eth0', index: 2 }, 'vepa', MAC).catch(() => undefined);
  assert.deepEqual(calls.at(-1), [
    'link',
    'add',
    'link',
    'eth0',
    'name',
    'macvtap0',
    'address',
    MAC,
    'type',
    'macvtap',
    'mode',
    'vepa',
  ]);
});

test('the sim runs bridge and direct NICs as user-mode networking and checks a direct parent', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pt-simnet-'));
  try {
    await createSimHost(dir, 'intel-x710-2port');
    const kernel = await openSimHost(dir);
    const nets = new SimNetdevs(kernel.sysfs);
    const pf = (await kernel.sysfs.list('/sys/class/net'))[0] ?? '';
    assert.ok(pf !== '');
    assert.deepEqual(await nets.plug({ kind: 'macvtap', parent: pf, mode: 'bridge', mac: MAC }), { kind: 'user' });
    assert.deepEqual(await nets.plug({ kind: 'tap', bridge: 'br0', mac: MAC }), { kind: 'user' });
    await assert.rejects(nets.plug({ kind: 'macvtap', parent: 'nodev9', mode: 'vepa', mac: MAC }), (e: unknown) => {
      assert.ok(e instanceof PassthruError);
      assert.equal(e.code, 'NO_DEVICE');
      assert.match(e.message, /parent network device 'nodev9'/);
      return true;
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a tap for an unprivileged QEMU is made owned by its user, as a port of the bridge', async () => {
  const runs: string[][] = [];
  const sets: unknown[] = [];
  const links = new Map([['br0', { name: 'br0', index: 7, kind: 'bridge', mtu: 1400 }]]);
  const nets = new LinuxNetdevs(
    {
      get: (name) => Promise.resolve(links.get(name)),
      addMacvtap: () => Promise.reject(new Error('not here')),
      set: (name, v) => {
        sets.push([name, v]);
        return Promise.resolve();
      },
      del: () => Promise.resolve(),
    },
    (_file, args) => {
      runs.push([...args]);
      links.set('vnet0', { name: 'vnet0', index: 9, kind: 'tun', mtu: 1500 });
      return Promise.resolve({ stdout: '', stderr: '' });
    },
  );
  const got = await nets.plug({ kind: 'tap', bridge: 'br0', mac: MAC, owner: { uid: 107, gid: 108 } });
  assert.deepEqual(got, { kind: 'tap', name: 'vnet0' });
  assert.deepEqual(runs, [['tuntap', 'add', 'dev', 'vnet0', 'mode', 'tap', 'user', '107', 'group', '108']]);
  assert.deepEqual(sets, [['vnet0', { mac: 'fe:54:00:aa:00:01', master: 7, mtu: 1400 }]]);
});
