import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { renderVfTable } from '../../src/cli/run/nodedev.ts';
import { parseMac } from '../../src/conf/mac.ts';
import { parsePciAddress } from '../../src/conf/pci-address.ts';
import { singleTag } from '../../src/conf/vlan.ts';
import { EventBus } from '../../src/daemon/events.ts';
import { NodeDevices } from '../../src/daemon/nodedevs.ts';
import { createSimHost } from '../../src/host/sim/create.ts';
import { openSimHost } from '../../src/host/sim/kernel.ts';
import { hostOps } from '../../src/hostdev/host-ops.ts';
import { HostdevManager } from '../../src/hostdev/manager.ts';
import { silentLogger } from '../../src/lib/logger.ts';

test('nodedev-vfs: every VF with, per port, every attribute, its driver and the domain holding it; the table shows the same', async () => {
  const base = await mkdtemp(join(tmpdir(), 'passthru-vfs-'));
  try {
    const host = join(base, 'host');
    await createSimHost(host, 'mellanox-cx3-dualport');
    const kernel = await openSimHost(host);
    const m = await HostdevManager.open(hostOps(kernel), join(base, 'state'), silentLogger());
    const nd = new NodeDevices(kernel, m, new EventBus());
    await kernel.setVf('ens2d1', 0, {
      vlan: { id: 7, qos: 3, proto: '802.1ad' },
      trust: true,
      spoofchk: true,
      linkState: 'disable',
      rate: { minTx: 0, maxTx: 300 },
    });
    await m.prepare('web1', [
      {
        alias: 'hostdev0',
        address: parsePciAddress('0000:04:00.2'),
        managed: true,
        stub: 'vfio-pci',
        assigned: true,
        ports: [
          { port: 1, net: { mac: parseMac('52:54:00:01:02:03'), vlan: singleTag(42) } },
          { port: 2, net: { mac: parseMac('52:54:00:01:02:04'), rate: { minTx: 0, maxTx: 500 } } },
        ],
      },
    ]);
    const t = await nd.vfTable('ens2');
    assert.equal(t.pfNetdev, 'ens2');
    const [vf0, vf1] = t.vfs;
    assert.deepEqual(
      vf0?.ports.map((p) => [
        p.port,
        p.pfNetdev,
        p.netdev,
        p.vlan,
        p.qos,
        p.proto,
        p.trust,
        p.spoofchk,
        p.linkState,
        p.maxTxRate,
      ]),
      [
        [1, 'ens2', 'ens2f0p1', 0, 0, '802.1Q', false, false, 'auto', 0],
        [2, 'ens2d1', 'ens2f0p2', 7, 3, '802.1ad', true, true, 'disable', 300],
      ],
    );
    assert.deepEqual([vf0?.driver, vf0?.domain], ['mlx4_core', undefined]);
    assert.deepEqual([vf1?.address, vf1?.driver, vf1?.domain], ['0000:04:00.2', 'vfio-pci', 'web1']);
    assert.deepEqual(
      vf1?.ports.map((p) => [p.port, p.pfNetdev, p.netdev, p.mac, p.vlan, p.maxTxRate]),
      [
        [1, 'ens2', undefined, '52:54:00:01:02:03', 42, 0],
        [2, 'ens2d1', undefined, '52:54:00:01:02:04', 0, 500],
      ],
      'on vfio-pci the VF has no netdev of its own',
    );
    const text = renderVfTable(t).split('\n');
    assert.match(
      text[1] ?? '',
      /VF +Address +Port +PF netdev +Netdev +Admin MAC +VLAN +QoS +Proto +Spoofchk +Trust +Min TX +Max TX +Link +Driver +Domain/,
    );
    assert.equal(text.filter((l) => /^\s*\d+\s+0000:/.test(l)).length, 2 * t.vfs.length, 'a line per VF port');
    const line = text.find((l) => l.includes('52:54:00:01:02:04')) ?? '';
    assert.deepEqual(line.trim().split(/\s+/), [
      '1',
      '0000:04:00.2',
      '2',
      'ens2d1',
      '-',
      '52:54:00:01:02:04',
      '0',
      '0',
      '802.1Q',
      'off',
      'off',
      '0',
      '500',
      'auto',
      'vfio-pci',
      'web1',
    ]);
    await m.release('web1');
    assert.equal((await nd.vfTable('ens2')).vfs[1]?.domain, undefined);
  } finally {
    await rm(base, { recursive: true, force: true });
  }
});
