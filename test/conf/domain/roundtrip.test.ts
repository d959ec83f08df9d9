import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatDomainXml } from '../../../src/conf/domain/format.ts';
import { parseDomainXml } from '../../../src/conf/domain/parse.ts';
import { readDomainXml } from '../../../src/conf/domain/read.ts';
import { SEED_HOSTDEVS, SKELETON_INACTIVE, SKELETON_INPUT, SKELETON_LIVE, skeletonWithHostdevs } from './fixtures.ts';

test('the skeleton guest reads with defaults and formats canonically', () => {
  const def = readDomainXml(SKELETON_INPUT, 'web1.xml');
  assert.equal(def.memoryKiB, 262144);
  assert.equal(def.devices.interfaces[0]?.type, 'hostdev');
  assert.equal(formatDomainXml(def, { inactive: true }), SKELETON_INACTIVE);
});

test('the canonical inactive form is a fixpoint', () => {
  assert.equal(formatDomainXml(readDomainXml(SKELETON_INACTIVE), { inactive: true }), SKELETON_INACTIVE);
});

test('live XML keeps aliases, controllers and guest addresses; inactive drops the aliases', () => {
  const def = readDomainXml(SKELETON_LIVE);
  assert.equal(formatDomainXml(def, { live: true }), SKELETON_LIVE);
  const inactive = formatDomainXml(def, { inactive: true });
  assert.doesNotMatch(inactive, /<alias/);
  assert.match(inactive, /bus='0x01' slot='0x00'/);
  const hd = def.devices.interfaces[0];
  assert.ok(hd?.type === 'hostdev');
  assert.deepEqual(hd.guestAddress, { type: 'pci', domain: 0, bus: 1, slot: 0, function: 0 });
  assert.equal(hd.alias, 'hostdev0');
  assert.deepEqual(hd.vlan, { tags: [{ id: 42 }], trunk: false });
  assert.equal(hd.source.managed, true);
});

test('the running domain id is written in live and status XML only', () => {
  const def = readDomainXml(SKELETON_LIVE.replace("<domain type='kvm'>", "<domain type='kvm' id='7'>"));
  assert.equal(def.id, 7);
  assert.match(formatDomainXml(def, { live: true }), /^<domain type='kvm' id='7'>/);
  assert.match(formatDomainXml(def, { status: true }), /^<domain type='kvm' id='7'>/);
  assert.match(formatDomainXml(def, { inactive: true }), /^<domain type='kvm'>/);
  assert.match(formatDomainXml(def, { migratable: true }), /^<domain type='kvm'>/);
});

test('user aliases survive the inactive format', () => {
  const xml = SKELETON_INPUT.replace("<model type='virtio'/>", "<model type='virtio'/>\n      <alias name='ua-net'/>");
  assert.match(formatDomainXml(readDomainXml(xml), { inactive: true }), /<alias name='ua-net'\/>/);
});

test('memory units are converted to KiB as libvirt does', () => {
  const mem = (m: string): number =>
    parseDomainXml(SKELETON_INPUT.replace("<memory unit='MiB'>256</memory>", m)).memoryKiB;
  assert.equal(mem('<memory>1024</memory>'), 1024);
  assert.equal(mem("<memory unit='G'>1</memory>"), 1048576);
  assert.equal(mem("<memory unit='GB'>1</memory>"), 976563);
  assert.equal(mem("<memory unit='b'>1</memory>"), 1);
  assert.equal(mem("<memory unit='bytes'>2048</memory>"), 2);
  assert.equal(mem("<memory unit='KB'>1000</memory>"), 977);
});

test('postParse generates a MAC in 52:54:00 with the injected randomness', () => {
  const xml = SKELETON_INPUT.replace("<mac address='52:54:00:00:00:02'/>\n", '');
  const def = readDomainXml(xml, 'x', { randomBytes: (n) => Uint8Array.from({ length: n }, (_, i) => 0xa0 + i) });
  assert.equal(def.devices.interfaces[1]?.mac, '52:54:00:a0:a1:a2');
});

test('decimal PCI fields are read and written in hex', () => {
  const xml = SKELETON_INPUT.replace(
    "<address domain='0x0000' bus='0x06' slot='0x02' function='0x2'/>",
    "<address domain='0x0021' bus='222' slot='31' function='1'/>",
  );
  const def = readDomainXml(xml);
  assert.deepEqual(def.devices.hostdevs[0]?.source.address, { domain: 0x21, bus: 222, slot: 31, function: 1 });
  assert.match(formatDomainXml(def), /<address domain='0x0021' bus='0xde' slot='0x1f' function='0x1'\/>/);
});

test('a network interface shows its allocated VF in live XML, <actual> in status, neither inactive', () => {
  const xml = SKELETON_INPUT.replace(
    /<interface type='user'>[\s\S]*?<\/interface>/,
    `<interface type='network'>
      <mac address='52:54:00:00:00:03'/>
      <source network='vfpool' portgroup='web'/>
      <actual type='hostdev' managed='yes'>
        <driver name='vfio'/>
        <source>
          <address type='pci' domain='0x0000' bus='0x06' slot='0x02' function='0x5'/>
        </source>
        <vlan>
          <tag id='7'/>
        </vlan>
      </actual>
    </interface>`,
  );
  const def = readDomainXml(xml);
  const live = formatDomainXml(def, { live: true });
  assert.match(
    live,
    /<interface type='hostdev' managed='yes'>\s*<mac address='52:54:00:00:00:03'\/>\s*<driver name='vfio'\/>/,
  );
  assert.match(live, /function='0x5'/);
  const status = formatDomainXml(def, { status: true });
  assert.match(status, /<source network='vfpool' portgroup='web'\/>\s*<actual type='hostdev' managed='yes'>/);
  assert.equal(formatDomainXml(readDomainXml(status), { status: true }), status);
  const inactive = formatDomainXml(def, { inactive: true });
  assert.doesNotMatch(inactive, /actual|0x5/);
  assert.match(inactive, /<interface type='network'>/);
});

test('[seed] assigned=no and netdev ports round-trip', () => {
  const xml = skeletonWithHostdevs(SEED_HOSTDEVS);
  const def = readDomainXml(xml);
  assert.equal(def.devices.hostdevs[1]?.assigned, false);
  assert.deepEqual(
    def.devices.hostdevs[0]?.netdevs?.map((n) => [n.port, n.mac]),
    [
      [1, '52:54:00:01:02:03'],
      [2, '52:54:00:01:02:04'],
    ],
  );
  const text = formatDomainXml(def, { inactive: true });
  assert.equal(formatDomainXml(readDomainXml(text), { inactive: true }), text);
  assert.match(text, /managed='yes' assigned='no'/);
});

test("the kernel's net_failover example (virtio tuning, link down, tap name) reads and round-trips", () => {
  const pair = `<interface type='network'>
      <mac address='52:54:00:00:12:53'/>
      <source network='enp66s0f0_br'/>
      <target dev='tap01'/>
      <model type='virtio'/>
      <driver name='vhost' queues='4'/>
      <link state='down'/>
      <teaming type='persistent'/>
      <alias name='ua-backup0'/>
    </interface>
    <interface type='hostdev' managed='yes'>
      <mac address='52:54:00:00:12:53'/>
      <source>
        <address type='pci' domain='0x0000' bus='0x42' slot='0x02' function='0x5'/>
      </source>
      <teaming type='transient' persistent='ua-backup0'/>
    </interface>`;
  const xml = SKELETON_INACTIVE.replace(
    /<interface type='hostdev'[\s\S]*<\/interface>\n(\s*)<serial/,
    `${pair}\n$1<serial`,
  );
  const def = readDomainXml(xml);
  assert.equal(def.devices.interfaces[0]?.linkState, 'down');
  assert.equal(def.devices.interfaces[0]?.virtioDriver?.attrs.get('queues'), '4');
  assert.equal(formatDomainXml(def, { inactive: true }), xml);
});

test("a serial file's append='on' is kept, on the console libvirt adds too", () => {
  const xml = SKELETON_INPUT.replace(
    "<source path='/var/log/passthru/web1.log'/>",
    "<source path='/var/log/passthru/web1.log' append='on'/>",
  );
  const def = readDomainXml(xml);
  assert.equal(def.devices.serials[0]?.append, true);
  assert.equal(def.devices.consoles[0]?.append, true);
  const text = formatDomainXml(def, { inactive: true });
  assert.equal(text.match(/<source path='\/var\/log\/passthru\/web1.log' append='on'\/>/g)?.length, 2);
  assert.equal(formatDomainXml(readDomainXml(text), { inactive: true }), text);
});
