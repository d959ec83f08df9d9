import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatDomainXml } from '../../../src/conf/domain/format.ts';
import { readDomainXml } from '../../../src/conf/domain/read.ts';
import { formatNetworkXml } from '../../../src/conf/network/format.ts';
import { readNetworkXml } from '../../../src/conf/network/read.ts';
import { formatDevicePoolXml } from '../../../src/conf/pool/format.ts';
import { readDevicePoolXml } from '../../../src/conf/pool/read.ts';
import { SEED_HOSTDEVS, SKELETON_LIVE, skeletonWithHostdevs } from '../domain/fixtures.ts';
import { files, read, rngProblem } from './libvirt.ts';

/** The [seed]/[beyond] extensions, as we write them, validate against our RELAX NG overlays
 *  (src/conf/rng), which still accept all of libvirt's syntax. */

const EXTENDED_DOMAIN = skeletonWithHostdevs(
  `${SEED_HOSTDEVS}
    <hostdev mode='subsystem' type='pci' managed='yes'>
      <source pool='gpus'/>
    </hostdev>
    <hostdev mode='subsystem' type='pci' managed='yes'>
      <source pool='gpus' tags='migratable,fast'/>
    </hostdev>`,
).replace("<interface type='hostdev' managed='yes'>", "<interface type='hostdev-hybrid' managed='yes'>");

test('domain extensions validate against passthru-domain.rng, and libvirt alone refuses them', () => {
  const def = readDomainXml(EXTENDED_DOMAIN);
  for (const flags of [{ inactive: true }, { live: true }, { status: true }]) {
    const xml = formatDomainXml(def, flags);
    assert.equal(rngProblem('passthru-domain.rng', xml), undefined);
    assert.notEqual(rngProblem('domain.rng', xml), undefined, 'libvirt has no such syntax');
  }
});

/** A hybrid interface with its standby as the live XML shows it, and a network interface on a
 *  hybrid network as define writes it. */
const HYBRID = `<interface type='hostdev-hybrid' managed='yes' spoofCheck='no'>
      <mac address='52:54:00:01:02:05'/>
      <source>
        <address type='pci' domain='0x0000' bus='0x06' slot='0x02' function='0x4'/>
      </source>
      <standby>
        <source dev='enp6s0f0' mode='bridge'/>
        <target dev='macvtap3'/>
        <alias name='net1'/>
        <address type='pci' domain='0x0000' bus='0x05' slot='0x00' function='0x0'/>
      </standby>
      <alias name='hostdev1'/>
      <address type='pci' domain='0x0000' bus='0x04' slot='0x00' function='0x0'/>
    </interface>
    <interface type='network'>
      <mac address='52:54:00:01:02:06'/>
      <source network='hybrid'/>
      <standby>
        <address type='pci' domain='0x0000' bus='0x06' slot='0x00' function='0x0'/>
      </standby>
    </interface>`;

test('a hybrid interface with its <standby>, and a network interface with one, validate against the overlay in every form', () => {
  const def = readDomainXml(skeletonWithHostdevs(HYBRID));
  for (const flags of [{ inactive: true }, { live: true }, { migratable: true }]) {
    const xml = formatDomainXml(def, flags);
    assert.match(xml, /<standby>/);
    assert.equal(rngProblem('passthru-domain.rng', xml), undefined, JSON.stringify(flags));
    assert.notEqual(rngProblem('domain.rng', xml), undefined, 'libvirt has no such syntax');
  }
  // The macvtap and its PF are this host's: live only.
  assert.match(formatDomainXml(def, { live: true }), /<target dev='macvtap3'\/>/);
  assert.doesNotMatch(formatDomainXml(def, { migratable: true }), /macvtap3|enp6s0f0/);
  const bad = skeletonWithHostdevs(HYBRID.replace("mode='bridge'", "mode='vepa'"));
  assert.notEqual(rngProblem('passthru-domain.rng', bad), undefined);
});

test("<numatune><memory placement='device'/> validates against the overlay, and libvirt alone refuses it", () => {
  const xml = formatDomainXml(
    readDomainXml(
      SKELETON_LIVE.replace(
        '<os>',
        "<numatune>\n    <memory mode='strict' placement='device'/>\n  </numatune>\n  <os>",
      ),
    ),
    { inactive: true },
  );
  assert.match(xml, /placement='device'/);
  assert.equal(rngProblem('passthru-domain.rng', xml), undefined);
  assert.notEqual(rngProblem('domain.rng', xml), undefined);
});

test('the domain overlay still accepts every libvirt document we write, and refuses bad extension values', () => {
  assert.equal(rngProblem('passthru-domain.rng', SKELETON_LIVE), undefined);
  for (const f of files('domain/xml2xml-out', '.xml')) {
    assert.equal(rngProblem('passthru-domain.rng', read('domain/xml2xml-out', f)), undefined, f);
  }
  assert.notEqual(rngProblem('passthru-domain.rng', EXTENDED_DOMAIN.replace("port='2'", "port='two'")), undefined);
  assert.notEqual(rngProblem('passthru-domain.rng', EXTENDED_DOMAIN.replace("pool='gpus'", "pool='a b'")), undefined);
});

test('network extensions (hostdev-hybrid mode, selectors) validate against passthru-network.rng', () => {
  const xml = formatNetworkXml(
    readNetworkXml(`<network spoofCheck='yes'>
  <name>hybrid</name>
  <forward mode='hostdev-hybrid' managed='yes'>
    <select vendor='8086' device='154c' driver='iavf' pf='enp6s0f0#0,2-7' numa='1'/>
    <select pf='0000:06:00.1#3' tags='fast'/>
  </forward>
  <vlan><tag id='5' qos='3' protocol='802.1ad'/></vlan>
  <link state='up'/>
  <portgroup name='web'>
    <vlan>
      <tag id='7'/>
    </vlan>
  </portgroup>
  <portgroup name='db' spoofCheck='no'>
    <bandwidth><outbound average='12500' floor='1250'/></bandwidth>
    <link state='down'/>
  </portgroup>
</network>`),
  );
  assert.equal(rngProblem('passthru-network.rng', xml), undefined);
  assert.notEqual(rngProblem('network.rng', xml), undefined);
  for (const kept of [
    "<network spoofCheck='yes'>",
    "<tag id='5' qos='3' protocol='802.1ad'/>",
    "<portgroup name='db' spoofCheck='no'>",
    "<outbound average='12500' floor='1250'/>",
    "<link state='down'/>",
  ])
    assert.ok(xml.includes(kept), kept);
  for (const f of files('network/out', '.xml')) {
    assert.equal(rngProblem('passthru-network.rng', read('network/out', f)), undefined, f);
  }
});

test('device pools validate against passthru-devicepool.rng', () => {
  const xml = `<devicepool managed='yes' quarantine='yes'>
  <name>gpus</name>
  <select vendor='10de' device='1db6' tags='big'/>
  <address type='pci' domain='0x0000' bus='0x3b' slot='0x00' function='0x0' tags='migratable,fast'/>
  <resolved>
    <address type='pci' domain='0x0000' bus='0x3b' slot='0x00' function='0x0' usedBy='web1'/>
  </resolved>
</devicepool>
`;
  const def = readDevicePoolXml(xml);
  assert.equal(def.quarantine, true);
  assert.deepEqual(def.addresses[0]?.tags, ['migratable', 'fast']);
  assert.deepEqual(def.selectors[0]?.tags, ['big']);
  assert.equal(formatDevicePoolXml(def), xml);
  assert.notEqual(rngProblem('passthru-devicepool.rng', xml.replace("tags='big'", "tags='a b'")), undefined);
  for (const inactive of [true, false]) {
    assert.equal(rngProblem('passthru-devicepool.rng', formatDevicePoolXml(def, { inactive })), undefined);
  }
  assert.notEqual(rngProblem('passthru-devicepool.rng', xml.replace('<name>gpus</name>', '')), undefined);
});
