import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readDomainXml } from '../../src/conf/domain/read.ts';
import { applyLinkStates, hostNicRequest, plugHostNics } from '../../src/daemon/host-nics.ts';
import type { HostNetdevs, HostNicRequest } from '../../src/host/netdev.ts';
import type { QmpClient } from '../../src/qemu/qmp.ts';
import { prepareLiveDef } from '../../src/qemu/live-def.ts';

const live = prepareLiveDef(
  readDomainXml(`<domain type='kvm'><name>n</name><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type>hvm</type></os><devices>
  <interface type='user'><mac address='52:54:00:00:00:01'/><link state='down'/></interface>
  <interface type='bridge'><mac address='52:54:00:00:00:02'/><source bridge='br0'/><link state='up'/></interface>
  <interface type='direct'><mac address='52:54:00:00:00:03'/><source dev='eth0'/><target dev='mytap'/><mtu size='1400'/><link state='down'/></interface>
</devices></domain>`),
);

test('link state down is set over QMP for each NIC QEMU backs, before the guest runs', async () => {
  const calls: unknown[] = [];
  const qmp = {
    execute: (cmd: string, args?: object) => Promise.resolve(calls.push([cmd, args])),
  } as unknown as QmpClient;
  await applyLinkStates(live, qmp);
  assert.deepEqual(calls, [
    ['set_link', { name: 'net0', up: false }],
    ['set_link', { name: 'net2', up: false }],
  ]);
});

test('a direct NIC asks for a macvtap in vepa by default with its <target dev>; a failed plug unplugs what was made', async () => {
  const direct = live.devices.interfaces[2];
  assert.ok(direct);
  assert.deepEqual(hostNicRequest(direct), {
    kind: 'macvtap',
    parent: 'eth0',
    mode: 'vepa',
    mac: '52:54:00:00:00:03',
    name: 'mytap',
    mtu: 1400,
  });
  const made: string[] = [];
  const removed: string[] = [];
  const netdevs: HostNetdevs = {
    backend: 'linux',
    check: () => Promise.resolve(),
    plug: (req: HostNicRequest) => {
      if (req.kind === 'macvtap') return Promise.reject(new Error('no macvtap today'));
      made.push('vnet0');
      return Promise.resolve({ kind: 'tap', name: 'vnet0' });
    },
    unplug: (name) => {
      removed.push(name);
      return Promise.resolve();
    },
  };
  await assert.rejects(plugHostNics(live, netdevs), /no macvtap today/);
  assert.deepEqual(removed, made);
});
