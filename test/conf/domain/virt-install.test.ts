import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { formatDomainXml } from '../../../src/conf/domain/format.ts';
import { readDomainXml } from '../../../src/conf/domain/read.ts';
import { rngProblem } from '../conformance/libvirt.ts';

/** What users bring: a domain as virt-install writes it and `virsh dumpxml --inactive` shows it
 *  (metadata, features, cpu, clock timers, pm, qcow2 disk, xhci, virtio-serial + guest agent
 *  channel, pty serial/console, tablet, VNC, watchdog, balloon, rng) plus a VF. */
const TEXT = readFileSync(join(import.meta.dirname, 'virt-install.xml'), 'utf8');

test('a virt-install domain reads and formats back unchanged (but for the quotes of <metadata>)', () => {
  const def = readDomainXml(TEXT, 'virt-install.xml');
  assert.equal(def.devices.controllers.find((c) => c.type === 'usb')?.ports, 15);
  assert.deepEqual(
    def.devices.others?.map((o) => o.kind),
    ['channel', 'input', 'input', 'input', 'graphics', 'audio', 'video', 'watchdog', 'memballoon', 'rng'],
  );
  const out = formatDomainXml(def, { inactive: true });
  // libvirt writes <metadata> with libxml2's double quotes; our writer uses single quotes throughout.
  const metadataQuotes = (s: string): string =>
    s.replace(/<metadata>[\s\S]*<\/metadata>/, (m) => m.replaceAll('"', "'"));
  assert.equal(out, metadataQuotes(TEXT));
  assert.equal(rngProblem('domain.rng', out), undefined);
});

test('an NFV guest (hugepages, pinning, NUMA, UEFI, vIOMMU, VFs) reads, round-trips and is libvirt-valid', () => {
  const text = readFileSync(join(import.meta.dirname, 'nfv.xml'), 'utf8');
  const def = readDomainXml(text, 'nfv.xml');
  assert.equal(def.os.firmware, 'efi');
  assert.equal(def.os.loader?.attrs.get('type'), 'pflash');
  assert.deepEqual(
    def.devices.others?.map((o) => o.kind),
    ['memballoon', 'iommu'],
  );
  const out = formatDomainXml(def, { inactive: true });
  assert.equal(out, text);
  assert.equal(rngProblem('domain.rng', out), undefined);
});
