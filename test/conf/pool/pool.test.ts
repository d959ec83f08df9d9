import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatDomainXml } from '../../../src/conf/domain/format.ts';
import { readDomainXml } from '../../../src/conf/domain/read.ts';
import { PassthruError } from '../../../src/conf/error.ts';
import { formatDevicePoolXml } from '../../../src/conf/pool/format.ts';
import { devicePoolXmlProblems, readDevicePoolXml } from '../../../src/conf/pool/read.ts';
import { skeletonWithHostdevs } from '../domain/fixtures.ts';

const POOL = `<devicepool managed='yes'>
  <name>gpus</name>
  <uuid>81ff0d90-c91e-6742-64da-4a736edb9a9b</uuid>
  <driver name='vfio'/>
  <select vendor='10de' device='1db6' numa='0'/>
  <select pf='enp6s0f0#0,2-7'/>
  <address type='pci' domain='0x0000' bus='0x3b' slot='0x00' function='0x0'/>
  <resolved>
    <address type='pci' domain='0x0000' bus='0x3b' slot='0x00' function='0x0' usedBy='web1'/>
    <address type='pci' domain='0x0000' bus='0x5e' slot='0x00' function='0x0'/>
  </resolved>
</devicepool>
`;

test('a device pool round-trips live, and drops what it resolved to when inactive', () => {
  const def = readDevicePoolXml(POOL);
  assert.equal(def.managed, true);
  assert.deepEqual(def.selectors[1]?.vfs, [
    [0, 0],
    [2, 7],
  ]);
  assert.equal(def.selectors[0]?.vendor, 0x10de);
  assert.equal(def.resolved?.[0]?.usedBy, 'web1');
  assert.equal(formatDevicePoolXml(def), POOL);
  const inactive = formatDevicePoolXml(def, { inactive: true });
  assert.doesNotMatch(inactive, /resolved|usedBy/);
  assert.equal(formatDevicePoolXml(readDevicePoolXml(inactive), { inactive: true }), inactive);
});

test('bad pools are refused naming element and line', () => {
  const problems = devicePoolXmlProblems('<devicepool>\n  <name>x</name>\n</devicepool>');
  assert.equal(problems[0]?.line, 1);
  assert.match(problems[0]?.message ?? '', /has no members/);
  const dup = POOL.replace(
    '<resolved>',
    "<address type='pci' domain='0x0000' bus='0x3b' slot='0x00' function='0x0'/>\n  <resolved>",
  );
  assert.match(
    devicePoolXmlProblems(dup)[0]?.message ?? '',
    /<address> at line 8: PCI device '0000:3b:00.0' can only be listed once/,
  );
  assert.throws(
    () => readDevicePoolXml(POOL.replace("<select pf='enp6s0f0#0,2-7'/>", "<select pf='enp6s0f0#7-2'/>")),
    (e: unknown) => e instanceof PassthruError && e.line === 6 && e.message.includes('runs backwards'),
  );
  assert.throws(
    () => readDevicePoolXml(POOL.replace("<select pf='enp6s0f0#0,2-7'/>", '<select/>')),
    (e: unknown) => e instanceof PassthruError && e.line === 6 && e.message.includes('empty <select/>'),
  );
  assert.throws(
    () => readDevicePoolXml(POOL.replace('<uuid>', "<uuid bogus='1'>")),
    (e: unknown) => e instanceof PassthruError && e.line === 3 && e.message.includes("attribute 'bogus'"),
  );
  assert.throws(
    () =>
      readDevicePoolXml(
        POOL.replace(
          "<address type='pci' domain='0x0000' bus='0x5e'",
          "<address type='drive' domain='0x0000' bus='0x5e'",
        ),
      ),
    (e: unknown) => e instanceof PassthruError && e.line === 10 && e.message.includes("type='pci', not 'drive'"),
  );
});

test('a hostdev may name a pool instead of an address; the live form shows the device it got', () => {
  const xml = skeletonWithHostdevs(
    "<hostdev mode='subsystem' type='pci' managed='yes'>\n      <source pool='gpus'/>\n      <alias name='ua-gpu'/>\n    </hostdev>",
  );
  const def = readDomainXml(xml);
  assert.equal(def.devices.hostdevs.length, 0);
  assert.deepEqual(
    def.devices.poolHostdevs?.map((h) => [h.pool, h.managed, h.alias]),
    [['gpus', true, 'ua-gpu']],
  );
  const text = formatDomainXml(def, { inactive: true });
  assert.match(
    text,
    /<hostdev mode='subsystem' type='pci' managed='yes'>\n {6}<source pool='gpus'\/>\n {6}<alias name='ua-gpu'\/>/,
  );
  // What the daemon makes of it at start: an ordinary hostdev that remembers its pool.
  const given = {
    ...def,
    devices: {
      ...def.devices,
      poolHostdevs: [],
      hostdevs: [
        {
          mode: 'subsystem' as const,
          type: 'pci' as const,
          alias: 'ua-gpu',
          source: { managed: true, pool: 'gpus', address: { domain: 0, bus: 0x3b, slot: 0, function: 0 } },
        },
      ],
    },
  };
  const live = formatDomainXml(given, { live: true });
  assert.match(
    live,
    /<source pool='gpus'>\n {8}<address domain='0x0000' bus='0x3b' slot='0x00' function='0x0'\/>\n {6}<\/source>/,
  );
  assert.equal(formatDomainXml(readDomainXml(live), { live: true }), live);
  assert.equal(formatDomainXml(given, { inactive: true }), text);
  assert.doesNotMatch(formatDomainXml(given, { migratable: true }), /0x3b/);
});
