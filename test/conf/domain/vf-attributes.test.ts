import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatDomainXml } from '../../../src/conf/domain/format.ts';
import { kibPerSecToMbps } from '../../../src/conf/domain/parse-parts.ts';
import { readDomainXml } from '../../../src/conf/domain/read.ts';
import type { HostdevInterfaceDef } from '../../../src/conf/domain/types.ts';
import { PassthruError } from '../../../src/conf/error.ts';
import { rngProblem } from '../conformance/libvirt.ts';
import { SKELETON_INPUT, skeletonWithHostdevs } from './fixtures.ts';

/** Every VF attribute, on an interface and on both ports of a dual-port VF, as a user writes
 *  them (docs/vf-attributes.md). */
const IFACE = `<interface type='hostdev' managed='yes' trustGuestRxFilters='yes' spoofCheck='no'>
      <mac address='52:54:00:00:00:01'/>
      <source>
        <address type='pci' domain='0x0000' bus='0x06' slot='0x02' function='0x1'/>
      </source>
      <vlan>
        <tag id='42' qos='3' protocol='802.1ad'/>
      </vlan>
      <bandwidth>
        <outbound average='125000' floor='12500'/>
      </bandwidth>
      <link state='down'/>
    </interface>`;

const PORTS = `<hostdev mode='subsystem' type='pci' managed='yes'>
      <source>
        <address domain='0x0000' bus='0x06' slot='0x02' function='0x0'/>
      </source>
      <netdev port='1' trustGuestRxFilters='no' spoofCheck='yes'>
        <mac address='52:54:00:01:02:03'/>
        <vlan>
          <tag id='42' qos='1'/>
        </vlan>
        <link state='up'/>
        <bandwidth>
          <outbound average='62500'/>
        </bandwidth>
      </netdev>
      <netdev port='2'>
        <mac address='52:54:00:01:02:04'/>
      </netdev>
    </hostdev>`;

const SKELETON_IFACE = /<interface type='hostdev' managed='yes'>[\s\S]*?<\/interface>/;
const DOC = skeletonWithHostdevs(PORTS).replace(SKELETON_IFACE, IFACE);

test('VF attributes: parsed typed, written back as given, valid in the overlay and not in libvirt alone', () => {
  assert.ok(SKELETON_IFACE.test(SKELETON_INPUT));
  const def = readDomainXml(DOC);
  const i = def.devices.interfaces[0] as HostdevInterfaceDef;
  assert.deepEqual(
    [i.trustGuestRxFilters, i.spoofCheck, i.linkState, i.bandwidth, i.vlan?.tags[0]],
    [true, false, 'down', { outbound: { average: 125000, floor: 12500 } }, { id: 42, qos: 3, protocol: '802.1ad' }],
  );
  const [p1, p2] = def.devices.hostdevs[0]?.netdevs ?? [];
  assert.deepEqual(
    [p1?.trustGuestRxFilters, p1?.spoofCheck, p1?.linkState, p1?.bandwidth, p1?.vlan?.tags[0]],
    [false, true, 'up', { outbound: { average: 62500 } }, { id: 42, qos: 1 }],
  );
  assert.equal(p2?.trustGuestRxFilters, undefined);
  for (const flags of [{ inactive: true }, { live: true }, { status: true }]) {
    const xml = formatDomainXml(def, flags);
    assert.ok(xml.includes(IFACE.replace(/\n {6}/g, '\n      ')), xml);
    assert.equal(formatDomainXml(readDomainXml(xml), flags), xml, 'a second round trip is byte-identical');
    assert.equal(rngProblem('passthru-domain.rng', xml), undefined);
    assert.notEqual(rngProblem('domain.rng', xml), undefined, 'libvirt has no spoofCheck or tag qos');
  }
  // libvirt's own words (trust, link state, bandwidth) alone stay valid libvirt.
  const libvirtOnly = IFACE.replace(" spoofCheck='no'", '').replace(" qos='3' protocol='802.1ad'", '');
  const xml = formatDomainXml(readDomainXml(SKELETON_INPUT.replace(SKELETON_IFACE, libvirtOnly)), { inactive: true });
  assert.equal(rngProblem('domain.rng', xml), undefined);
});

/** Replaces one fragment of DOC and expects a located error. */
function refuses(from: string, to: string, line: number, message: string): void {
  assert.ok(DOC.includes(from), `fixture lacks ${from}`);
  assert.throws(
    () => readDomainXml(DOC.replace(from, to), 'guest.xml'),
    (e: unknown) => {
      assert.ok(e instanceof PassthruError, String(e));
      assert.equal(e.code, 'XML_INVALID', e.message);
      assert.equal(e.line, line, e.message);
      assert.ok(e.message.includes(message), e.message);
      return true;
    },
  );
}

test('bad VF attributes are refused at their element, naming what a VF can do', () => {
  const line = (frag: string): number => DOC.slice(0, DOC.indexOf(frag)).split('\n').length;
  const outbound = "<outbound average='125000' floor='12500'/>";
  refuses("qos='3'", "qos='8'", line("qos='3'"), "qos='8' is out of range 0..7");
  refuses("protocol='802.1ad'", "protocol='802.1x'", line("protocol='802.1ad'"), 'protocol');
  refuses("spoofCheck='no'", "spoofCheck='maybe'", line("spoofCheck='no'"), 'spoofCheck');
  refuses(outbound, "<outbound average='125000' peak='200000'/>", line(outbound), "a VF's TX rate has no peak");
  refuses(outbound, "<outbound average='100' floor='200'/>", line(outbound), "floor='200' is above average='100'");
  refuses(outbound, "<outbound average='10'/>", line(outbound), "average='10' KiB/s is below 1 Mbit/s");
  refuses(outbound, "<inbound average='10'/>", line(outbound), 'only <outbound> (its TX rate)');
  refuses("<link state='up'/>", "<link state='sideways'/>", line("<link state='up'/>"), 'sideways');
  // Not on interfaces QEMU backs: passthru would have nowhere to put it.
  assert.throws(
    () =>
      readDomainXml(
        SKELETON_INPUT.replace("<interface type='user'>", "<interface type='user' spoofCheck='no'>"),
        'guest.xml',
      ),
    /spoofCheck/,
  );
});

test("the TX rate unit: libvirt's KiB/s to the kernel's whole Mbit/s", () => {
  assert.equal(kibPerSecToMbps(125000), 1024);
  assert.equal(kibPerSecToMbps(122071), 1000);
  assert.equal(kibPerSecToMbps(12500), 102);
  assert.equal(kibPerSecToMbps(62), 1);
  assert.equal(kibPerSecToMbps(61), 0);
  assert.equal(kibPerSecToMbps(0), 0);
});
