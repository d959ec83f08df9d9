import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PassthruError } from '../../../src/conf/error.ts';
import { formatNetworkXml } from '../../../src/conf/network/format.ts';
import { networkXmlProblems, readNetworkXml } from '../../../src/conf/network/read.ts';
import { validateAnyXml } from '../../../src/conf/validate-any.ts';

const POOL = `<network>
  <name>vfpool</name>
  <forward mode='hostdev' managed='yes'>
    <pf dev='enp6s0f0'/>
  </forward>
  <vlan>
    <tag id='42'/>
  </vlan>
  <portgroup name='web' default='yes'>
    <vlan>
      <tag id='7'/>
    </vlan>
    <virtualport type='802.1Qbh'>
      <parameters profileid='web-profile'/>
    </virtualport>
  </portgroup>
</network>
`;

test('a hostdev pool network round-trips; managed defaults to no and is always written', () => {
  const def = readNetworkXml(POOL);
  assert.equal(def.forward?.managed, true);
  assert.equal(formatNetworkXml(def, { inactive: true }), POOL);
  const unmanaged = readNetworkXml(POOL.replace(" managed='yes'", ''));
  assert.match(formatNetworkXml(unmanaged), /<forward mode='hostdev' managed='no'>/);
});

test('[beyond] selectors like the Kubernetes device plugin', () => {
  const xml = POOL.replace(
    "<pf dev='enp6s0f0'/>",
    "<select vendor='8086' device='154c' driver='iavf' pf='enp6s0f0#0,2-7' numa='1'/>",
  );
  const def = readNetworkXml(xml);
  assert.deepEqual(def.forward?.selectors, [
    {
      vendor: 0x8086,
      device: 0x154c,
      driver: 'iavf',
      pf: 'enp6s0f0',
      vfs: [
        [0, 0],
        [2, 7],
      ],
      numaNode: 1,
      line: 4,
    },
  ]);
  assert.equal(formatNetworkXml(def), xml);
});

test('hostdev-hybrid networks ([seed]) take the same pool forms', () => {
  const xml = POOL.replace("mode='hostdev'", "mode='hostdev-hybrid'");
  const def = readNetworkXml(xml);
  assert.equal(def.forward?.mode, 'hostdev-hybrid');
  assert.equal(def.forward?.pfs[0]?.dev, 'enp6s0f0');
  assert.equal(formatNetworkXml(def, { inactive: true }), xml);
});

test('network rules name the element and line', () => {
  const cases: [string, number, RegExp][] = [
    [
      POOL.replace("<pf dev='enp6s0f0'/>", "<interface dev='eth0'/>"),
      4,
      /require all devices to be listed by PCI address/,
    ],
    [POOL.replace("<pf dev='enp6s0f0'/>", "<pf dev='a'/><pf dev='b'/>"), 4, /only one <pf>/],
    [
      POOL.replace(
        "<pf dev='enp6s0f0'/>",
        "<address type='pci' bus='0x03' slot='0' function='1'/>\n<address type='pci' bus='3' slot='0' function='1'/>",
      ),
      5,
      /PCI device '0000:03:00.1' can only be listed once/,
    ],
    [POOL.replace("<tag id='42'/>", "<tag id='42'/><tag id='43'/>"), 1, /vlan trunking is not supported/],
    [
      POOL.replace("<portgroup name='web' default='yes'>", "<portgroup name='web' default='yes' bogus='1'>"),
      9,
      /attribute 'bogus'/,
    ],
    [POOL.replace('</network>', "  <portgroup name='web'/>\n</network>"), 17, /portgroup name 'web' is used twice/],
    [POOL.replace("<forward mode='hostdev' managed='yes'>", "<forward mode='nat'>"), 3, /mode='nat' is not one of/],
  ];
  for (const [xml, line, message] of cases) {
    const problems = networkXmlProblems(xml);
    assert.ok(problems[0] instanceof PassthruError, xml);
    assert.equal(problems[0].line, line, problems[0].message);
    assert.match(problems[0].message, message);
  }
});

test('validateAnyXml tells the kinds apart and reports every problem', () => {
  assert.deepEqual(validateAnyXml(POOL), { kind: 'network', problems: [] });
  const r = validateAnyXml('<domain type="kvm"><name>x</name></domain>');
  assert.equal(r.kind, 'domain');
  assert.match(r.problems[0]?.message ?? '', /missing <os>/);
  const two = validateAnyXml(
    POOL.replace("<pf dev='enp6s0f0'/>", "<interface dev='eth0'/>").replace(
      "<tag id='42'/>",
      "<tag id='42'/><tag id='43'/>",
    ),
  );
  assert.deepEqual(
    two.problems.map((p) => [p.line, p.message.replace(/^.*?: /, '').slice(0, 24)]),
    [
      [4, "hostdev network 'vfpool'"],
      [1, "network 'vfpool': vlan t"],
    ],
  );
  assert.equal(validateAnyXml('<devicepool><name>g</name></devicepool>').kind, 'devicepool');
  assert.equal(validateAnyXml('<networkport/>').kind, 'networkport');
  assert.equal(validateAnyXml('<device/>').kind, 'device');
  const unknown = validateAnyXml('\n<nope/>').problems[0];
  assert.equal(unknown?.code, 'XML_INVALID');
  assert.equal(unknown.line, 2, 'an unknown root element is located at its own line');
  assert.equal(validateAnyXml('<nope').problems[0]?.code, 'XML_SYNTAX');
});
