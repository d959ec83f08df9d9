import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readDomainXml } from '../../../src/conf/domain/read.ts';
import { PassthruError } from '../../../src/conf/error.ts';
import { findPortgroup, portSettings } from '../../../src/conf/network/merge.ts';
import { readNetworkXml } from '../../../src/conf/network/read.ts';

const NET = readNetworkXml(`<network trustGuestRxFilters='no'>
  <name>pool</name>
  <forward mode='hostdev' managed='yes'><pf dev='enp6s0f0'/></forward>
  <vlan><tag id='1'/></vlan>
  <virtualport type='802.1Qbh'/>
  <portgroup name='web' default='yes'>
    <vlan><tag id='2'/></vlan>
    <virtualport><parameters profileid='web-profile'/></virtualport>
  </portgroup>
  <portgroup name='db' trustGuestRxFilters='yes'/>
</network>`);

function iface(extra: string, source = "<source network='pool'/>"): Parameters<typeof portSettings>[0] {
  const def = readDomainXml(`<domain><name>d</name><memory>1024</memory><os><type>hvm</type></os><devices>
<interface type='network'><mac address='52:54:00:00:00:01'/>${source}${extra}</interface></devices></domain>`);
  const i = def.devices.interfaces[0];
  assert.ok(i);
  return i;
}

test('vlan and trust: interface > portgroup (named or default) > network', () => {
  assert.deepEqual(
    portSettings(iface(''), NET).vlan?.tags.map((t) => t.id),
    [2],
  );
  assert.deepEqual(
    portSettings(iface("<vlan><tag id='3'/></vlan>"), NET).vlan?.tags.map((t) => t.id),
    [3],
  );
  const db = portSettings(iface('', "<source network='pool' portgroup='db'/>"), NET);
  assert.deepEqual(
    db.vlan?.tags.map((t) => t.id),
    [1],
  );
  assert.equal(db.trustGuestRxFilters, true);
  assert.equal(portSettings(iface(''), NET).trustGuestRxFilters, false);
  assert.equal(portSettings(iface(''), NET).portgroup?.name, 'web');
});

test('virtualports merge; the same parameter given twice must agree', () => {
  assert.deepEqual(portSettings(iface(''), NET).virtualport, { type: '802.1Qbh', profileid: 'web-profile' });
  assert.throws(
    () => portSettings(iface("<virtualport><parameters profileid='other'/></virtualport>"), NET),
    (e: unknown) =>
      e instanceof PassthruError &&
      e.message.startsWith("interface 52:54:00:00:00:01 on network 'pool': ") &&
      e.message.includes('mismatched profileid: other and web-profile'),
  );
  assert.throws(
    () => portSettings(iface("<virtualport type='802.1Qbg'/>"), NET),
    (e: unknown) => e instanceof PassthruError && /mismatched types \(802.1Qbg and 802.1Qbh\)/.test(e.message),
  );
});

test('a portgroup the network does not have is an error naming the ones it has', () => {
  assert.throws(
    () => findPortgroup(NET, 'nope'),
    (e: unknown) =>
      e instanceof PassthruError &&
      e.message.includes("no portgroup named 'nope'") &&
      e.hint === 'its portgroups: web, db',
  );
});
