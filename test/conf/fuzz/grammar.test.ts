import { test } from 'node:test';
import fc from 'fast-check';
import { checkOnlyTypedErrors } from './seeds.ts';

/**
 * Grammar-based fuzzing: documents built from the vocabulary the parsers know (element and
 * attribute names, plausible and implausible values), nested at random, so that most inputs get
 * past the XML reader and exercise the grammar and the rules.
 */
const ROOTS = ['domain', 'network', 'networkport', 'devicepool', 'device'];
const ELEMENTS = [
  'name',
  'uuid',
  'memory',
  'vcpu',
  'os',
  'type',
  'kernel',
  'devices',
  'hostdev',
  'interface',
  'source',
  'address',
  'mac',
  'vlan',
  'tag',
  'virtualport',
  'parameters',
  'teaming',
  'alias',
  'boot',
  'rom',
  'driver',
  'controller',
  'model',
  'target',
  'serial',
  'console',
  'netdev',
  'forward',
  'pf',
  'portgroup',
  'select',
  'owner',
  'plug',
  'resolved',
  'actual',
  'disk',
  'input',
  'memballoon',
  'capability',
  'iommuGroup',
];
const ATTRS = [
  'type',
  'mode',
  'managed',
  'assigned',
  'domain',
  'bus',
  'slot',
  'function',
  'multifunction',
  'address',
  'id',
  'trunk',
  'nativeMode',
  'persistent',
  'name',
  'order',
  'bar',
  'file',
  'enabled',
  'index',
  'model',
  'port',
  'chassis',
  'hotplug',
  'dev',
  'network',
  'portgroup',
  'pool',
  'unit',
  'profileid',
  'managerid',
  'typeid',
  'instanceid',
  'vendor',
  'device',
  'pf',
  'numa',
  'default',
  'path',
  'usedBy',
  'bogus',
];
const VALUES = [
  'pci',
  'hostdev',
  'user',
  'network',
  'subsystem',
  'yes',
  'no',
  'on',
  'off',
  '0',
  '1',
  '7',
  '8',
  '0x1f',
  '0x20',
  '255',
  '256',
  '4095',
  '4096',
  '-1',
  'x',
  '',
  'persistent',
  'transient',
  'ua-a',
  'virtio',
  'pcie-root',
  'pcie-root-port',
  'pci-root',
  'q35',
  'hvm',
  '52:54:00:00:00:01',
  '01:00:5e:00:00:01',
  'zz:zz',
  'c7a5fdbd-edaf-9455-926a-d65c16db1809',
  '802.1Qbh',
  '802.1Qbg',
  'openvswitch',
  'MiB',
  'parsec',
  'p0#0,2-7',
  'p0#7-2',
  '/a',
  'unassigned',
  'drive',
  'vfio',
];

const escape = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/'/g, '&apos;');

const attrs = fc
  .array(fc.tuple(fc.constantFrom(...ATTRS), fc.constantFrom(...VALUES)), { maxLength: 4 })
  .map((as) => [...new Map(as)].map(([k, v]) => ` ${k}='${escape(v)}'`).join(''));

const { tree } = fc.letrec((tie) => ({
  tree: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.tuple(fc.constantFrom(...ELEMENTS), attrs).map(([n, a]) => `<${n}${a}/>`),
    fc
      .tuple(fc.constantFrom(...ELEMENTS), attrs, fc.constantFrom(...VALUES))
      .map(([n, a, t]) => `<${n}${a}>${escape(t)}</${n}>`),
    fc
      .tuple(fc.constantFrom(...ELEMENTS), attrs, fc.array(tie('tree'), { maxLength: 4 }))
      .map(([n, a, kids]) => `<${n}${a}>${kids.join('')}</${n}>`),
  ),
}));

/** Half the documents get the mandatory frame of their kind (a domain's name, memory and os, a
 *  network's name), so that the random part reaches the device and pool grammars. */
const FRAMES: Record<string, [string, string]> = {
  domain: ['<name>f</name><memory>1024</memory><os><type>hvm</type></os><devices>', '</devices>'],
  network: ['<name>f</name>', ''],
  devicepool: ['<name>f</name>', ''],
  networkport: [
    "<uuid>5d744f21-ba4a-4d6e-bdb2-30a35ff3207d</uuid><owner><name>m</name><uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid></owner><mac address='52:54:00:7b:35:93'/>",
    '',
  ],
  device: ['<name>pci_0000_00_00_0</name>', ''],
};

const doc = fc
  .tuple(
    fc.constantFrom(...ROOTS),
    fc.oneof({ arbitrary: fc.constant(''), weight: 4 }, { arbitrary: attrs, weight: 1 }),
    fc.array(tree, { maxLength: 6 }),
    fc.boolean(),
  )
  .map(([r, a, kids, framed]) => {
    const [open, close] = framed ? (FRAMES[r] ?? ['', '']) : ['', ''];
    return `<${r}${a}>\n${open}${kids.join('\n')}${close}\n</${r}>`;
  });

const RUNS = 32_000;

test(`grammar-based fuzz of every parser: ${RUNS} inputs, only typed errors`, (t) => {
  let valid = 0;
  let pastFirstLine = 0;
  fc.assert(
    fc.property(doc, (text) => {
      const problems = checkOnlyTypedErrors(text);
      if (problems.length === 0) valid++;
      else if ((problems[0]?.line ?? 0) >= 2) pastFirstLine++;
    }),
    { numRuns: RUNS },
  );
  t.diagnostic(`valid documents: ${valid}; refused past the root element: ${pastFirstLine}`);
});
