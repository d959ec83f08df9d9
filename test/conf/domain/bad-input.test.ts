import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatDomainXml } from '../../../src/conf/domain/format.ts';
import { domainXmlProblems, readDomainXml } from '../../../src/conf/domain/read.ts';
import { PassthruError } from '../../../src/conf/error.ts';
import { SKELETON_INPUT } from './fixtures.ts';

/** Replaces one exact fragment of the skeleton guest, failing loudly if it is not there. */
function variant(from: string, to: string): string {
  assert.ok(SKELETON_INPUT.includes(from), `fixture lacks ${from}`);
  return SKELETON_INPUT.replace(from, to);
}

function rejects(xml: string, code: string, line: number, message: RegExp): void {
  assert.throws(
    () => readDomainXml(xml, 'guest.xml'),
    (e: unknown) => {
      assert.ok(e instanceof PassthruError, String(e));
      assert.equal(e.code, code, e.message);
      assert.equal(e.line, line, e.message);
      assert.match(e.message, message);
      return true;
    },
  );
}

const HOST_ADDR = "<address type='pci' domain='0x0000' bus='0x06' slot='0x02' function='0x1'/>";

test('malformed XML: XML_SYNTAX with line and column', () => {
  rejects(variant('<vcpu>1</vcpu>', '<vcpu>1</vcpux>'), 'XML_SYNTAX', 5, /guest\.xml:5:/);
  rejects(`${SKELETON_INPUT}<extra/>`, 'XML_SYNTAX', 37, /./);
});

test('unknown elements and attributes are refused with their name and line', () => {
  rejects(
    variant('<vcpu>1</vcpu>', '<vcpu>1</vcpu>\n  <bogus/>'),
    'XML_INVALID',
    6,
    /<bogus>.*not supported inside <domain>/,
  );
  rejects(variant("<tag id='42'/>", "<tag id='42' pcp='3'/>"), 'XML_INVALID', 20, /attribute 'pcp' is not supported/);
  rejects(
    variant("<model type='virtio'/>", "<model type='virtio'/>\n      <filterref filter='x'/>"),
    'XML_INVALID',
    26,
    /<filterref>/,
  );
  rejects(
    variant("<hostdev mode='subsystem' type='pci' managed='no'>", "<hostdev mode='subsystem' type='usb' managed='no'>"),
    'XML_INVALID',
    27,
    /hostdev type 'usb' is not supported/,
  );
});

test('bad PCI addresses: out of range, malformed, the host bridge', () => {
  rejects(
    variant(HOST_ADDR, HOST_ADDR.replace("slot='0x02'", "slot='0x20'")),
    'XML_INVALID',
    17,
    /slot 32 is out of range/,
  );
  rejects(
    variant(HOST_ADDR, HOST_ADDR.replace("function='0x1'", "function='8'")),
    'XML_INVALID',
    17,
    /function 8 is out of range/,
  );
  rejects(
    variant(HOST_ADDR, HOST_ADDR.replace("bus='0x06'", "bus='zz'")),
    'XML_INVALID',
    17,
    /bus='zz' is not a non-negative integer/,
  );
  rejects(
    variant(HOST_ADDR, "<address type='pci' domain='0x0000' bus='0x00' slot='0x00' function='0x1'/>"),
    'XML_INVALID',
    14,
    /invalid PCI address 0000:00:00.1: at least one of domain, bus, or slot must be > 0/,
  );
  rejects(variant(HOST_ADDR, HOST_ADDR.replace("type='pci' ", '')), 'XML_INVALID', 17, /missing source address type/);
});

test('bad MAC addresses: malformed and multicast', () => {
  rejects(
    variant("'52:54:00:00:00:01'", "'52:54:00:00:00'"),
    'XML_INVALID',
    15,
    /invalid MAC address '52:54:00:00:00'/,
  );
  rejects(variant("'52:54:00:00:00:01'", "'01:00:5e:00:00:01'"), 'XML_INVALID', 15, /multicast/);
});

test('bad VLAN ids and shapes', () => {
  rejects(variant("<tag id='42'/>", "<tag id='4096'/>"), 'XML_INVALID', 20, /invalid VLAN id '4096'/);
  rejects(variant("<tag id='42'/>", "<tag id='-1'/>"), 'XML_INVALID', 20, /invalid VLAN id/);
  rejects(variant("<tag id='42'/>", ''), 'XML_INVALID', 19, /at least one <tag/);
  rejects(
    variant("<vlan>\n        <tag id='42'/>", "<vlan trunk='yes'>\n        <tag id='42'/><tag id='43'/>"),
    'XML_INVALID',
    14,
    /vlan trunking is not supported by SR-IOV/,
  );
  rejects(
    variant("<model type='virtio'/>", "<model type='virtio'/>\n      <vlan><tag id='5'/></vlan>"),
    'XML_INVALID',
    23,
    /vlan tag not supported for this connection type/,
  );
});

test('a domain without name, memory or os is refused', () => {
  rejects(variant('<name>web1</name>', ''), 'XML_INVALID', 1, /missing domain <name>/);
  rejects(variant("<memory unit='MiB'>256</memory>", ''), 'XML_INVALID', 1, /missing <memory>/);
  rejects(
    variant("<memory unit='MiB'>256</memory>", "<memory unit='parsec'>256</memory>"),
    'XML_INVALID',
    4,
    /unknown memory unit 'parsec'/,
  );
  rejects('<network/>', 'XML_INVALID', 1, /expected a <domain> document/);
});

test('domainXmlProblems lists every rule violation at once', () => {
  const xml = variant(
    "<model type='virtio'/>",
    "<model type='virtio'/>\n      <vlan><tag id='5'/></vlan>\n      <boot order='1'/>",
  ).replace(
    "<hostdev mode='subsystem' type='pci' managed='no'>",
    "<hostdev mode='subsystem' type='pci' managed='no'>\n      <boot order='1'/>",
  );
  const problems = domainXmlProblems(xml);
  assert.deepEqual(
    problems.map((p) => [p.line, /vlan tag|boot order 1/.exec(p.message)?.[0]]),
    [
      [23, 'vlan tag'],
      [29, 'boot order 1'],
    ],
  );
  const broken = domainXmlProblems('<domain>');
  assert.equal(broken.length, 1, 'a syntax error stops there: one problem');
  assert.equal(broken[0]?.code, 'XML_SYNTAX');
});

test('deeply nested <metadata> is refused, not a stack overflow when written back', () => {
  const deep = `<metadata>${'<a>'.repeat(5000)}${'</a>'.repeat(5000)}</metadata>`;
  rejects(variant('<vcpu>1</vcpu>', `<vcpu>1</vcpu>\n  ${deep}`), 'XML_INVALID', 6, /nested more than 32 levels/);
  const ok = `<metadata><x:a xmlns:x='urn:x'><x:b k='v'>t</x:b></x:a></metadata>`;
  assert.match(
    formatDomainXml(readDomainXml(variant('<vcpu>1</vcpu>', `<vcpu>1</vcpu>\n  ${ok}`))),
    /<x:b k='v'>t<\/x:b>/,
  );
});

test('attributes or elements inside a text element are refused, not dropped', () => {
  rejects(
    variant('<name>web1</name>', "<name lang='en'>web1</name>"),
    'XML_INVALID',
    2,
    /<name> at line 2: attribute 'lang'/,
  );
  rejects(
    variant('<name>web1</name>', '<name>web1<b/></name>'),
    'XML_INVALID',
    2,
    /element <b> is not supported inside <name>/,
  );
  rejects(
    variant('<cmdline>console=ttyS0 quiet</cmdline>', "<cmdline x='1'>console=ttyS0 quiet</cmdline>"),
    'XML_INVALID',
    10,
    /<cmdline> at line 10: attribute 'x'/,
  );
});

test("a setting passthru would drop is refused: <boot loadparm> (s390's)", () => {
  rejects(
    variant("<model type='virtio'/>", "<model type='virtio'/>\n      <boot order='1' loadparm='x'/>"),
    'XML_INVALID',
    26,
    /<boot> at line 26: attribute 'loadparm' is not supported/,
  );
});
