import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readDomainXml } from '../../src/conf/domain/read.ts';
import { PassthruError } from '../../src/conf/error.ts';
import { iommuProps } from '../../src/qemu/iommu.ts';
import { memlockBytes } from '../../src/qemu/memlock.ts';

const domain = (iommu: string, opts: { machine?: string; ioapic?: boolean } = {}) =>
  readDomainXml(
    `<domain type='kvm'><name>v</name><memory unit='MiB'>256</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='${opts.machine ?? 'q35'}'>hvm</type></os>
${opts.ioapic ? "<features><ioapic driver='qemu'/></features>" : ''}
<devices>
${iommu}
</devices></domain>`,
    'v.xml',
  );

const refused = (message: RegExp, line: number) => (e: unknown) =>
  e instanceof PassthruError && e.code === 'CONFIG_UNSUPPORTED' && message.test(e.message) && e.line === line;

test("vIOMMU: <iommu model='intel'> becomes intel-iommu with libvirt's property names; none without one", () => {
  const def = domain(
    "<iommu model='intel'><driver intremap='on' caching_mode='on' eim='off' iotlb='off' aw_bits='39'/></iommu>",
    { ioapic: true },
  );
  assert.deepEqual(iommuProps(def, true, true), {
    driver: 'intel-iommu',
    id: 'iommu0',
    intremap: 'on',
    'caching-mode': true,
    eim: 'off',
    'device-iotlb': false,
    'aw-bits': 39,
  });
  assert.deepEqual(iommuProps(domain("<iommu model='intel'/>"), true, false), { driver: 'intel-iommu', id: 'iommu0' });
  assert.equal(iommuProps(domain(''), true, true), undefined);
});

test('vIOMMU: what QEMU or libvirt would refuse is refused before anything starts, naming the line', () => {
  // A VF behind it needs caching mode: QEMU's "We need to set caching-mode=on for intel-iommu to
  // enable device assignment with IOMMU protection", said with the fix.
  const plain = domain("<iommu model='intel'/>");
  assert.throws(
    () => iommuProps(plain, true, true),
    (e: unknown) =>
      refused(/needs its caching mode/, 5)(e) && ((e as PassthruError).hint ?? '').includes("caching_mode='on'"),
  );
  assert.throws(
    () => iommuProps(domain("<iommu model='intel'><driver intremap='on'/></iommu>"), true, false),
    refused(/^IOMMU interrupt remapping requires split I\/O APIC \(ioapic driver='qemu'\)$/, 5),
  );
  assert.throws(
    () => iommuProps(domain("<iommu model='intel'><driver eim='on'/></iommu>", { ioapic: true }), true, false),
    refused(/^iommu eim requires interrupt remapping to be enabled$/, 5),
  );
  assert.throws(
    () => iommuProps(domain("<iommu model='intel'/>", { machine: 'pc' }), false, false),
    refused(/only supported with Q35 machines/, 5),
  );
  assert.throws(
    () => iommuProps(domain("<iommu model='virtio'/>"), true, false),
    refused(/IOMMU model 'virtio' is not supported/, 5),
  );
  assert.throws(
    () => iommuProps(domain("<iommu model='intel'><driver aw_bits='40'/></iommu>"), true, false),
    refused(/aw_bits '40'/, 5),
  );
});

test('vIOMMU: each VFIO device behind it may pin all guest RAM, so memlock counts every device', () => {
  const def = domain("<iommu model='intel'><driver caching_mode='on'/></iommu>");
  assert.equal(memlockBytes(def, 2), 2 * (256 + 1024) * 1024 * 1024);
  assert.equal(memlockBytes(domain(''), 2), (256 + 1024) * 1024 * 1024);
});
