import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatDomainXml } from '../../../src/conf/domain/format.ts';
import { parseDomainXml } from '../../../src/conf/domain/parse.ts';
import { readDomainXml } from '../../../src/conf/domain/read.ts';
import type { DomainDef, InterfaceDef } from '../../../src/conf/domain/types.ts';
import { PassthruError } from '../../../src/conf/error.ts';
import { SKELETON_INACTIVE, SKELETON_LIVE } from '../domain/fixtures.ts';
import { files, omit, read, rngProblem } from './libvirt.ts';

const IN = 'domain/xml2argv';
const OUT = 'domain/xml2xml-out';
const inputs = files(IN, '.xml');
const errs = new Set(files(IN, '.err').map((f) => f.replace(/\.err$/, '.xml')));
const outs = files(OUT, '.xml');

/** libvirt's expected output for an input: NAME.xml or NAME.x86_64-latest.xml. */
function outFor(input: string): string | undefined {
  const base = input.replace(/\.xml$/, '');
  return outs.find((o) => o === `${base}.xml` || o === `${base}.x86_64-latest.xml`);
}

test('every libvirt expected output is a fixpoint of parse + format(inactive), byte for byte', (t) => {
  for (const f of outs) {
    const text = read(OUT, f);
    assert.equal(formatDomainXml(readDomainXml(text, f), { inactive: true }), text, f);
  }
  t.diagnostic(`xml2xml-out round trip: ${outs.length}/${outs.length}`);
  assert.ok(outs.length >= 17);
});

test('every libvirt input in scope reads, and formats back to itself where libvirt keeps it', (t) => {
  let same = 0;
  for (const f of inputs.filter((i) => !errs.has(i))) {
    const text = read(IN, f);
    readDomainXml(text, f);
    if (formatDomainXml(parseDomainXml(text, f), { inactive: true }) === text) same++;
  }
  const n = inputs.length - errs.size;
  t.diagnostic(`xml2argv inputs read: ${n}/${n}; byte-identical grammar round trip: ${same}/${n}`);
  // Typed disks are written in libvirt's order (net-hostdev-bootorder's <boot> before <address>,
  // q35-pcie-autoadd's <disk> first), as xml2xml-out shows them.
  assert.ok(same >= 16, `only ${same} byte-identical`);
});

/** What an input means in passthru's scope: host devices, interfaces, explicit controllers,
 *  identity and sizing. Guest addresses and implicit devices are the QEMU driver's additions
 *  (docs/conf-differences.md), so they are compared only where the input wrote them. */
function meaning(def: DomainDef, addressed: (i: number) => boolean, declared: Set<number>): unknown {
  // libvirt drops a network port's portid from the inactive definition (it names a runtime port).
  const iface = (i: InterfaceDef, n: number): unknown => ({
    ...omit(i, 'line', 'guestAddress', 'virtualport', 'portid'),
    virtualport: i.virtualport && omit(i.virtualport, 'line'),
    guestAddress: addressed(n) ? i.guestAddress : undefined,
  });
  return {
    name: def.name,
    uuid: def.uuid,
    memoryKiB: def.memoryKiB,
    currentMemoryKiB: def.currentMemoryKiB,
    vcpus: def.vcpus,
    os: { ...def.os, line: 0 },
    interfaces: def.devices.interfaces.map(iface),
    hostdevs: def.devices.hostdevs.map((h) => omit(h, 'line', 'guestAddress')),
    // The QEMU driver fills <model name>, chassis and port of PCI controllers: compare the rest.
    pciControllers: def.devices.controllers
      .filter((c) => c.type === 'pci' && declared.has(c.index))
      .map((c) => [c.index, c.model, c.target?.hotplug]),
  };
}

test('each input means what libvirt says it means (parse(input) ~ parse(expected output))', (t) => {
  let n = 0;
  for (const f of inputs.filter((i) => !errs.has(i))) {
    const out = outFor(f);
    if (out === undefined) continue;
    const a = readDomainXml(read(IN, f), f);
    const b = readDomainXml(read(OUT, out), out);
    const addressed = (i: number): boolean => a.devices.interfaces[i]?.guestAddress !== undefined;
    // PCI controllers the QEMU driver adds (root ports for every PCIe device) are not the input's.
    const declared = new Set(a.devices.controllers.filter((c) => c.type === 'pci').map((c) => c.index));
    assert.deepEqual(meaning(a, addressed, declared), meaning(b, addressed, declared), f);
    n++;
  }
  t.diagnostic(`xml2argv input -> xml2xml-out in scope: ${n}`);
  assert.ok(n >= 16);
});

test('every libvirt input with an .err file is rejected with a typed error', (t) => {
  for (const f of errs) {
    assert.throws(
      () => readDomainXml(read(IN, f), f),
      (e: unknown) => e instanceof PassthruError && e.line !== undefined,
      f,
    );
  }
  t.diagnostic(`.err rejections: ${errs.size}/${errs.size}`);
  assert.ok(errs.size >= 2);
});

test("what we write validates against libvirt's domain.rng (inactive, live, status)", (t) => {
  let n = 0;
  const docs: [string, string][] = [
    ['skeleton inactive', SKELETON_INACTIVE],
    ['skeleton live', SKELETON_LIVE],
  ];
  for (const f of inputs.filter((i) => !errs.has(i))) {
    const def = readDomainXml(read(IN, f), f);
    docs.push([`${f} inactive`, formatDomainXml(def, { inactive: true })]);
    docs.push([`${f} live`, formatDomainXml(def, { live: true })]);
    docs.push([`${f} status`, formatDomainXml(def, { status: true })]);
  }
  for (const [name, xml] of docs) {
    assert.equal(rngProblem('domain.rng', xml), undefined, name);
    n++;
  }
  t.diagnostic(`RELAX NG valid (domain.rng): ${n}/${docs.length}`);
});
