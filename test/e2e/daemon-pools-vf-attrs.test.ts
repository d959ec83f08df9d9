import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { VfTable } from '../../src/protocol/wire.ts';
import { simDaemonFixture } from '../helpers/daemon.ts';
import { qemuEnv } from './helpers/env.ts';
import { haltedQemu } from './helpers/halted-qemu.ts';

/**
 * Every VF attribute of the device manager set at network and portgroup level (spoof check,
 * link state, TX rates, the VLAN's qos and protocol), merged interface > portgroup > network,
 * checked on the VF table of a simulated ConnectX-5 (mlx5 takes them all); each domain a real
 * QEMU whose firmware only halts.
 */
const env = qemuEnv();
const skip = env.skip ?? false;
const fixture = simDaemonFixture('passthru-vfattrs', 'mellanox-cx5', skip !== false);

// average/floor are KiB/s: 12500 KiB/s = 102 Mbit/s, 1250 = 10, 25000 = 205, 37500 = 307.
const NETWORK = `<network spoofCheck='no'>
  <name>attrs</name>
  <forward mode='hostdev' managed='yes'><pf dev='ens3f0np0'/></forward>
  <bandwidth><outbound average='12500' floor='1250'/></bandwidth>
  <vlan><tag id='100' qos='3' protocol='802.1ad'/></vlan>
  <link state='up'/>
  <portgroup name='pg' spoofCheck='yes'>
    <vlan><tag id='200' qos='5'/></vlan>
    <bandwidth><outbound average='25000'/></bandwidth>
    <link state='down'/>
  </portgroup>
</network>`;

const domainXml = (name: string, emulator: string, iface: string) => `<domain type='kvm'>
  <name>${name}</name><memory unit='MiB'>32</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <devices><emulator>${emulator}</emulator>${iface}</devices>
</domain>`;

test('spoof check, link state, TX rates and VLAN qos/protocol from network and portgroup, the interface over both, on the VF table', {
  skip,
}, async () => {
  const client = fixture.current().client;
  const emulator = await haltedQemu(fixture.dir(), env.need());
  await client.post('/networks', { xml: NETWORK });
  await client.post('/networks/attrs/start');
  const before = (await client.get<VfTable>('/nodedevs/ens3f0np0/vfs')).vfs;
  const iface = (n: number, inner = '') =>
    `<interface type='network'><mac address='52:54:00:7c:00:0${n}'/>${inner}</interface>`;
  await client.post('/domains', { xml: domainXml('net', emulator, iface(1, "<source network='attrs'/>")) });
  await client.post('/domains', {
    xml: domainXml('pg', emulator, iface(2, "<source network='attrs' portgroup='pg'/>")),
  });
  await client.post('/domains', {
    xml: domainXml(
      'own',
      emulator,
      iface(
        3,
        `<source network='attrs' portgroup='pg'/><vlan><tag id='300'/></vlan><link state='up'/><bandwidth><outbound average='37500'/></bandwidth>`,
      ),
    ),
  });
  for (const d of ['net', 'pg', 'own']) await client.post(`/domains/${d}/start`);
  const rows = (await client.get<VfTable>('/nodedevs/ens3f0np0/vfs')).vfs;
  const seen = [0, 1, 2].map((vf) => {
    const p = rows.find((r) => r.vf === vf)?.ports[0];
    return [p?.mac, p?.vlan, p?.qos, p?.proto, p?.spoofchk, p?.linkState, p?.minTxRate, p?.maxTxRate];
  });
  assert.deepEqual(seen, [
    // the network's: spoof check off, link forced up, 10..102 Mbit/s, VLAN 100 qos 3 802.1ad
    ['52:54:00:7c:00:01', 100, 3, '802.1ad', false, 'enable', 10, 102],
    // the portgroup's over the network's (the network's floor stays: the portgroup's <bandwidth>
    // replaces the whole element, as libvirt's does): spoof check on, link down, VLAN 200 qos 5
    ['52:54:00:7c:00:02', 200, 5, '802.1Q', true, 'disable', 0, 205],
    // the interface's own VLAN, link and rate over the portgroup's; spoof check still the portgroup's
    ['52:54:00:7c:00:03', 300, 0, '802.1Q', true, 'enable', 0, 307],
  ]);
  const live = (await client.get<{ xml: string }>('/domains/pg/xml')).xml;
  assert.match(live, /<interface type='hostdev' managed='yes' spoofCheck='yes'>/);
  assert.match(live, /<outbound average='25000'\/>/);
  assert.match(live, /<link state='down'\/>/);
  for (const d of ['net', 'pg', 'own']) await client.post(`/domains/${d}/destroy`);
  const after = (await client.get<VfTable>('/nodedevs/ens3f0np0/vfs')).vfs;
  assert.deepEqual(after, before, 'every VF as it was');
});
