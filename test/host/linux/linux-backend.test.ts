import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { PassthruError } from '../../../src/conf/error.ts';
import { type MacAddress, parseMac, ZERO_MAC } from '../../../src/conf/mac.ts';
import { ipRoute2, parseLinkShow, setArgs } from '../../../src/host/linux/iproute2.ts';
import { LinuxKernel, parseSriovConfig } from '../../../src/host/linux/kernel.ts';
import { applyVfSettings, mismatch } from '../../../src/host/vf-apply.ts';
import { decodeVf, encodeVf, errnoOf } from '../../../src/host/linux/netlink.ts';
import type { Rtnl, VfDump } from '../../../src/host/linux/rtnl.ts';
import type { VfConfig, VfSettings } from '../../../src/host/types.ts';

const isHostError = (errno?: string) => (e: unknown) =>
  e instanceof PassthruError && e.code === 'HOST_FAILED' && (errno === undefined || e.errno === errno);

// iproute2 6.1 on netdevsim and igb in the VM lab (test/vmlab/).
const IP_JSON = JSON.stringify([
  {
    ifname: 'eth0',
    vfinfo_list: [
      {
        vf: 0,
        link_type: 'ether',
        address: '52:54:00:aa:bb:cc',
        broadcast: 'ff:ff:ff:ff:ff:ff',
        vlan_list: [{ vlan: 42 }],
        rate: { max_tx: 0, min_tx: 0 },
        spoofchk: true,
        link_state: 'auto',
        trust: true,
        query_rss_en: false,
      },
      {
        vf: 1,
        link_type: 'ether',
        address: '00:00:00:00:00:00',
        vlan_list: [{ vlan: 44, qos: 3, protocol: '802.1ad' }],
        rate: { max_tx: 100, min_tx: 0 },
        spoofchk: false,
        link_state: 'disable',
        trust: false,
      },
      { vf: 2, link_type: 'ether', address: '00:00:00:00:00:00', vlan_list: [{}], rate: { max_tx: 0, min_tx: 0 } },
    ],
  },
]);

test('iproute2: vfinfo_list JSON, absent keys are defaults', () => {
  const dump = parseLinkShow(IP_JSON, '', 'eth0');
  assert.equal(dump.truncated, false);
  assert.deepEqual(dump.vfs, [
    {
      vf: 0,
      mac: '52:54:00:aa:bb:cc',
      vlan: 42,
      qos: 0,
      spoofchk: true,
      trust: true,
      linkState: 'auto',
      minTxRate: 0,
      maxTxRate: 0,
    },
    {
      vf: 1,
      mac: ZERO_MAC,
      vlan: 44,
      qos: 3,
      vlanProto: '802.1ad',
      spoofchk: false,
      trust: false,
      linkState: 'disable',
      minTxRate: 0,
      maxTxRate: 100,
    },
    { vf: 2, mac: ZERO_MAC, vlan: 0, qos: 0, minTxRate: 0, maxTxRate: 0 },
  ]);
  assert.equal(parseLinkShow(IP_JSON, 'Truncated VF list: eth0\n', 'eth0').truncated, true);
  assert.throws(
    () => parseLinkShow('[]', '', 'eth9'),
    (e: unknown) => e instanceof PassthruError && e.code === 'NO_DEVICE',
  );
});

test('iproute2: one request per attribute, errors carry the errno and name the VF', async () => {
  const calls: string[][] = [];
  const rtnl = ipRoute2(async (_file, args) => {
    await Promise.resolve();
    calls.push([...args]);
    if (args.includes('state'))
      throw Object.assign(new Error('exit 2'), { stderr: 'RTNETLINK answers: Operation not supported\n' });
    return { stdout: '', stderr: '' };
  });
  await assert.rejects(
    rtnl.setVf('enp1s0', 1, { vlan: { id: 43, qos: 3 }, spoofchk: false, linkState: 'enable' }),
    (e: unknown) => isHostError('EOPNOTSUPP')(e) && String(e).includes('link state enable on VF 1 of PF enp1s0'),
  );
  assert.deepEqual(calls, [
    ['link', 'set', 'dev', 'enp1s0', 'vf', '1', 'vlan', '43', 'qos', '3'],
    ['link', 'set', 'dev', 'enp1s0', 'vf', '1', 'spoofchk', 'off'],
    ['link', 'set', 'dev', 'enp1s0', 'vf', '1', 'state', 'enable'],
  ]);
  assert.deepEqual(setArgs('p', 0, { mac: parseMac('52:54:00:00:00:01') }), [
    'link',
    'set',
    'dev',
    'p',
    'vf',
    '0',
    'mac',
    '52:54:00:00:00:01',
  ]);
  assert.deepEqual(setArgs('p', 0, { vlan: { id: 5, proto: '802.1ad' } }), [
    'link',
    'set',
    'dev',
    'p',
    'vf',
    '0',
    'vlan',
    '5',
    'proto',
    '802.1ad',
  ]);
});

test('netlink structs: what we encode decodes to the same row', () => {
  const settings: VfSettings[] = [
    { mac: parseMac('52:54:00:12:34:56') },
    { vlan: { id: 42, qos: 5 } },
    { vlan: { id: 7, proto: '802.1ad' } },
    { rate: { minTx: 10, maxTx: 1000 } },
    { spoofchk: false },
    { trust: true },
    { linkState: 'disable' },
  ];
  const merged: Record<string, Buffer> = {};
  for (const s of settings.filter((x) => !(x.vlan?.proto === '802.1ad'))) Object.assign(merged, encodeVf(3, s));
  assert.deepEqual(decodeVf(merged), {
    vf: 3,
    mac: '52:54:00:12:34:56',
    vlan: 42,
    qos: 5,
    spoofchk: false,
    trust: true,
    linkState: 'disable',
    minTxRate: 10,
    maxTxRate: 1000,
  });
  const qinq = decodeVf({ ...encodeVf(3, { mac: ZERO_MAC }), ...encodeVf(3, { vlan: { id: 7, proto: '802.1ad' } }) });
  assert.equal(qinq?.vlan, 7);
  assert.equal(qinq?.vlanProto, '802.1ad');
  // A driver that reports spoofchk/trust as -1 (unsupported): the keys are absent.
  const minus = Buffer.alloc(8, 0xff);
  minus.writeUInt32LE(3, 0);
  assert.equal(decodeVf({ ...encodeVf(3, { mac: ZERO_MAC }), spoofchk: minus, trust: minus })?.spoofchk, undefined);
  assert.equal(errnoOf(new Error('Request rejected: EOPNOTSUPP')), 'EOPNOTSUPP');
});

/** A fake rtnetlink: a table in memory, optional truncation and late MACs. */
function fakeRtnl(
  rows: VfConfig[],
  opts: { truncateAt?: number; numVf?: number; lateMacReads?: number } = {},
): Rtnl & { reads: number } {
  let late = 0;
  let pending: { vf: number; mac: MacAddress } | undefined;
  const self = {
    name: 'netlink' as const,
    reads: 0,
    async readVfs(): Promise<VfDump> {
      await Promise.resolve();
      self.reads++;
      if (pending && ++late > (opts.lateMacReads ?? 0)) {
        const p = pending;
        rows = rows.map((r) => (r.vf === p.vf ? { ...r, mac: p.mac } : r));
        pending = undefined;
      }
      const vfs = opts.truncateAt === undefined ? rows : rows.slice(0, opts.truncateAt);
      return { numVf: opts.numVf ?? rows.length, vfs, truncated: false };
    },
    async setVf(_pf: string, vf: number, s: VfSettings) {
      await Promise.resolve();
      if (s.mac !== undefined) pending = { vf, mac: s.mac };
      rows = rows.map((r) =>
        r.vf === vf
          ? {
              ...r,
              ...(s.vlan ? { vlan: s.vlan.id, qos: s.vlan.qos ?? 0 } : {}),
              ...(s.trust !== undefined ? { trust: s.trust } : {}),
            }
          : r,
      );
      if (opts.lateMacReads === undefined && pending) {
        const p = pending;
        rows = rows.map((r) => (r.vf === p.vf ? { ...r, mac: p.mac } : r));
        pending = undefined;
      }
    },
  };
  return self;
}

const row = (vf: number): VfConfig => ({
  vf,
  mac: ZERO_MAC,
  vlan: 0,
  qos: 0,
  spoofchk: true,
  trust: false,
  minTxRate: 0,
  maxTxRate: 0,
});

/** A /sys with one PF netdev whose driver is `driver`. */
function fakeRoot(driver: string, extra: (root: string) => void = () => undefined): string {
  const root = mkdtempSync(join(tmpdir(), 'passthru-linux-'));
  const dev = join(root, 'sys/devices/pci0000:00/0000:01:00.0');
  mkdirSync(join(dev, 'net/pf0'), { recursive: true });
  mkdirSync(join(root, 'sys/bus/pci/drivers', driver), { recursive: true });
  symlinkSync(`../../../bus/pci/drivers/${driver}`, join(dev, 'driver'));
  symlinkSync('../..', join(dev, 'net/pf0/device'));
  mkdirSync(join(root, 'sys/class/net'), { recursive: true });
  symlinkSync('../../devices/pci0000:00/0000:01:00.0/net/pf0', join(root, 'sys/class/net/pf0'));
  writeFileSync(join(dev, 'sriov_numvfs'), '4\n');
  extra(dev);
  return root;
}

test('linux: a VF write is verified; an async-MAC driver (i40e) is polled until it shows', async () => {
  const root = fakeRoot('i40e');
  try {
    const rtnl = fakeRtnl([row(0), row(1), row(2), row(3)], { lateMacReads: 3 });
    const sleeps: number[] = [];
    const k = new LinuxKernel({ root, rtnl });
    const sleep = (ms: number): Promise<void> => {
      sleeps.push(ms);
      return Promise.resolve();
    };
    await applyVfSettings(k, 'pf0', 2, { mac: parseMac('52:54:00:00:00:02'), vlan: { id: 42 } }, { sleep });
    assert.equal((await k.vfTable('pf0'))[2]?.mac, '52:54:00:00:00:02');
    assert.equal(sleeps.length, 3, 'three reads showed the old MAC');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('linux: a write that does not read back is an error naming the field', async () => {
  const root = fakeRoot('igb');
  try {
    // igb is not an async-MAC driver: a MAC that never shows fails at once.
    const rtnl = fakeRtnl([row(0)], { lateMacReads: 1000 });
    const k = new LinuxKernel({ root, rtnl });
    await assert.rejects(
      applyVfSettings(k, 'pf0', 0, { mac: parseMac('52:54:00:00:00:09') }, { sleep: () => Promise.resolve() }),
      (e: unknown) => isHostError()(e) && String(e).includes('admin MAC reads 00:00:00:00:00:00'),
    );
    assert.equal(rtnl.reads, 1);
    assert.equal(mismatch(row(0), { trust: true }), 'trust reads off');
    assert.equal(mismatch({ ...row(0), trust: undefined } as unknown as VfConfig, { trust: true }), undefined);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('linux: a truncated VF table is completed from mlx5 per-VF sysfs, else refused', async () => {
  const plain = fakeRoot('ice');
  const mlx5 = fakeRoot('mlx5_core', (dev) => {
    for (const n of [2, 3]) {
      mkdirSync(join(dev, 'sriov', String(n)), { recursive: true });
      writeFileSync(
        join(dev, 'sriov', String(n), 'config'),
        `VF         : ${n}\nMAC        : 52:54:00:00:00:0${n}\nVLAN       : 10\nQoS        : 0\nVLAN Proto : 802.1Q\nSpoofCheck : OFF\nTrust      : ON\nLinkState  : Auto\nMinTxRate  : 0\nMaxTxRate  : 0\n`,
      );
    }
  });
  try {
    const rows = [row(0), row(1), row(2), row(3)];
    const k1 = new LinuxKernel({ root: plain, rtnl: fakeRtnl(rows, { truncateAt: 2 }) });
    await assert.rejects(k1.vfTable('pf0'), isHostError('EMSGSIZE'));
    const k2 = new LinuxKernel({ root: mlx5, rtnl: fakeRtnl(rows, { truncateAt: 2 }) });
    const table = await k2.vfTable('pf0');
    assert.deepEqual(
      table.map((r) => r.vf),
      [0, 1, 2, 3],
    );
    assert.deepEqual(table[3], {
      vf: 3,
      mac: '52:54:00:00:00:03',
      vlan: 10,
      qos: 0,
      spoofchk: false,
      trust: true,
      linkState: 'auto',
      minTxRate: 0,
      maxTxRate: 0,
    });
    assert.equal(parseSriovConfig(0, 'MAC : zz').mac, ZERO_MAC);
  } finally {
    rmSync(plain, { recursive: true, force: true });
    rmSync(mlx5, { recursive: true, force: true });
  }
});

test('linux: EPERM on clearing VLAN 0 is harmless (bnxt, as libvirt), on setting a VLAN an error', async () => {
  for (const [driver, vlan, ok] of [
    ['bnxt_en', 0, true],
    ['igb', 0, true],
    ['bnxt_en', 5, false],
  ] as const) {
    const root = fakeRoot(driver);
    try {
      const rtnl: Rtnl = {
        ...fakeRtnl([row(0)]),
        setVf: async () => Promise.reject(new PassthruError('HOST_FAILED', 'x', { errno: 'EPERM' })),
      };
      const k = new LinuxKernel({ root, rtnl });
      const p = applyVfSettings(k, 'pf0', 0, { vlan: { id: vlan } });
      if (ok) await p;
      else await assert.rejects(p, isHostError('EPERM'));
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }
});

test('linux: sysfs writes go to existing attributes only, errors carry the errno', async () => {
  const root = fakeRoot('igb');
  try {
    const k = new LinuxKernel({ root, rtnl: fakeRtnl([]) });
    await k.writeSysfs('/sys/devices/pci0000:00/0000:01:00.0/sriov_numvfs', '0');
    // One write(2) at offset 0, no truncation: a sysfs store sees exactly the value.
    assert.equal(readFileSync(join(root, 'sys/devices/pci0000:00/0000:01:00.0/sriov_numvfs'), 'utf8'), '0\n');
    await assert.rejects(k.writeSysfs('/sys/devices/pci0000:00/0000:01:00.0/nope', '1'), isHostError('ENOENT'));
    assert.deepEqual(await k.present({ domain: 0, bus: 1, slot: 0x10, function: 2 }), {
      kind: 'vfio',
      host: { domain: 0, bus: 1, slot: 0x10, function: 2 },
    });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
