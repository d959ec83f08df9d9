import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatDomainXml } from '../../src/conf/domain/format.ts';
import { readDomainXml } from '../../src/conf/domain/read.ts';
import type { DomainDef } from '../../src/conf/domain/types.ts';
import { completeDefinition } from '../../src/qemu/define-def.ts';
import { prepareLiveDef } from '../../src/qemu/live-def.ts';
import { files, read } from '../conf/conformance/libvirt.ts';

/**
 * `define` writes what libvirt's QEMU driver writes for the same XML: libvirt's xml2xml-out,
 * byte for byte, once the deliberate differences of docs/conf-differences.md (rows 2a-2g) are
 * applied to libvirt's side. Each difference is one named rewrite, used only where it applies.
 */
const IN = 'domain/xml2argv';
const OUT = 'domain/xml2xml-out';

/** Cases passthrud does not run and does not address (row 2g), each with the reason; each must
 *  still differ, so the list cannot outlive its reason. */
const NOT_RUN: Record<string, string> = {
  'pcie-root-port-nohotplug': 'PCIe switch ports (passthrud runs root ports only)',
  'q35-pcie-autoadd': 'virtio disks, SCSI/serial/USB controllers, filesystems, virtio input and rng',
};

type Rewrite = (libvirt: string, input: string) => string;

const DIFFERENCES: Record<string, Rewrite> = {
  // 2a: libvirt's -latest cases fill <cpu> from QEMU's capabilities; passthrud takes -cpu from
  // the accelerator at start (host or max) and writes no model the user did not ask for.
  cpuFromCapabilities: (x, input) =>
    input.includes('<cpu') ? x : x.replace(/ {2}<cpu mode='custom' match='exact' check='none'>\n.*\n {2}<\/cpu>\n/, ''),
  // 2b: no USB controller model from capabilities (passthrud runs no USB controller).
  usbModelFromCapabilities: (x) =>
    x.replace("<controller type='usb' index='0' model='piix3-uhci'>", "<controller type='usb' index='0'>"),
  // 2c: no default <memballoon model='virtio'>: a balloon cannot take back the pinned memory of
  // a guest with a VFIO device, and passthrud does not run one.
  noDefaultBalloon: (x, input) =>
    input.includes('<memballoon') ? x : x.replace(/ {4}<memballoon model='virtio'>\n.*\n {4}<\/memballoon>\n/, ''),
  // 2d: libvirt's test capabilities have no pcie-root-port device, so a root port without
  // <model name> gets ioh3420; QEMU >= 2.9 has pcie-root-port, which passthrud uses.
  rootPortModelOfOldQemu: (x, input) => {
    const named = new Set(
      readDomainXml(input, 'input')
        .devices.controllers.filter((c) => c.modelName !== undefined)
        .map((c) => c.index),
    );
    return x.replace(
      /(<controller type='pci' index='(\d+)' model='pcie-root-port'>\n {6}<model name=')ioh3420'/g,
      (all, head: string, index: string) => (named.has(Number(index)) ? all : `${head}pcie-root-port'`),
    );
  },
  // 2e: carried devices (disk, video) are written as they came: no disk <driver> or drive
  // address, no primary video flag or address filled in.
  carriedAsWritten: (x, input) => {
    const inputDef = formatDomainXml(readDomainXml(input, 'input'), { inactive: true });
    let out = x;
    for (const kind of ['disk', 'video']) {
      const ours = blocks(inputDef, kind);
      blocks(x, kind).forEach((b, i) => {
        out = out.replace(b, ours[i] ?? '');
      });
    }
    return out;
  },
};

function blocks(xml: string, kind: string): string[] {
  return [...xml.matchAll(new RegExp(`^ {4}<${kind}[ >][\\s\\S]*?^ {4}</${kind}>\\n`, 'gm'))].map((m) => m[0]);
}

function expectedOf(input: string): { name: string; text: string } | undefined {
  const base = input.replace(/\.xml$/, '');
  const name = files(OUT, '.xml').find((o) => o === `${base}.xml` || o === `${base}.x86_64-latest.xml`);
  return name === undefined ? undefined : { name, text: read(OUT, name) };
}

const defineXml = (xml: string, source: string): string =>
  formatDomainXml(completeDefinition(readDomainXml(xml, source)), { inactive: true });

const cases = files(IN, '.xml').flatMap((f) => {
  const out = expectedOf(f);
  return out ? [{ base: f.replace(/\.xml$/, ''), input: read(IN, f), ...out }] : [];
});

for (const c of cases) {
  test(`define then dumpxml --inactive = libvirt's xml2xml-out: ${c.base}`, () => {
    const ours = defineXml(c.input, c.base);
    if (c.base in NOT_RUN) {
      assert.notEqual(ours, c.text, `${c.base} now matches: remove it from NOT_RUN`);
      return;
    }
    const used: string[] = [];
    let libvirt = c.text;
    if (ours !== libvirt) {
      for (const [name, rewrite] of Object.entries(DIFFERENCES)) {
        const next = rewrite(libvirt, c.input);
        if (next !== libvirt) used.push(name);
        libvirt = next;
      }
    }
    assert.equal(ours, libvirt, `${c.base} (differences applied: ${used.join(', ') || 'none'})`);
  });
}

test('the conformance cases with an output are all here, and most need no rewrite at all', () => {
  assert.ok(cases.length >= 17, `${cases.length} cases`);
  const identical = cases.filter((c) => defineXml(c.input, c.base) === c.text).length;
  assert.ok(identical >= 3, `${identical} byte-identical`);
});

test('define is a fixpoint: defining what define wrote changes nothing, and start moves no address', () => {
  for (const f of files(IN, '.xml').filter((f) => !files(IN, '.err').includes(f.replace(/\.xml$/, '.err')))) {
    const once = defineXml(read(IN, f), f);
    assert.equal(defineXml(once, f), once, f);
    const def = readDomainXml(once, f);
    if (f.startsWith('q35-pcie-autoadd') || f.startsWith('pcie-root-port-nohotplug')) continue;
    assert.deepEqual(addresses(prepareLiveDef(def)), addresses(def), `${f}: start kept the addresses`);
  }
});

test('spare root ports for hot-plug: libvirt keeps one free; the count is configurable', () => {
  const xml = `<domain type='kvm'><name>s</name><memory>262144</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os><devices>
  <hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0x0000' bus='0x06' slot='0x02' function='0x0'/></source></hostdev>
  </devices></domain>`;
  const ports = (d: DomainDef) => d.devices.controllers.filter((c) => c.model === 'pcie-root-port');
  const free = (d: DomainDef) =>
    ports(d).filter(
      (p) => !d.devices.hostdevs.some((h) => h.guestAddress?.type === 'pci' && h.guestAddress.bus === p.index),
    ).length;
  const base = readDomainXml(xml, 'spare');
  for (const spare of [0, 1, 3]) {
    const d = completeDefinition(base, { spareRootPorts: spare });
    assert.equal(ports(d).length, 1 + spare);
    assert.equal(free(d), spare);
  }
  assert.equal(free(completeDefinition(base)), 1);
});

function addresses(def: DomainDef): unknown {
  return {
    controllers: def.devices.controllers.filter((c) => c.type === 'pci').map((c) => [c.index, c.address]),
    interfaces: def.devices.interfaces.map((i) => i.guestAddress),
    hostdevs: def.devices.hostdevs.map((h) => h.guestAddress),
  };
}
