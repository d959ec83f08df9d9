import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PassthruError } from '../../src/conf/error.ts';
import { parseMac } from '../../src/conf/mac.ts';
import { parsePciAddress } from '../../src/conf/pci-address.ts';
import { singleTag } from '../../src/conf/vlan.ts';
import type { DeviceFacts } from '../../src/hostdev/facts.ts';
import { planPrepare } from '../../src/hostdev/plan.ts';
import type { HostdevRequest } from '../../src/hostdev/request.ts';

const VF = '0000:06:02.0';
const vfFacts = (over: Partial<DeviceFacts> = {}): DeviceFacts => ({
  address: parsePciAddress(VF),
  endpoint: true,
  driver: 'iavf',
  iommuGroup: 30,
  groupPeers: [],
  vf: { pf: parsePciAddress('0000:06:00.0'), pfNetdev: 'enp6s0f0', index: 0 },
  ...over,
});
const netReq: HostdevRequest = {
  alias: 'hostdev0',
  address: parsePciAddress(VF),
  managed: true,
  stub: 'vfio-pci',
  assigned: true,
  net: { mac: parseMac('52:54:00:00:00:01'), vlan: singleTag(42) },
};
const free = (): undefined => undefined;
const code = (c: string) => (e: unknown) => e instanceof PassthruError && e.code === c;

test('an interface hostdev on a VF: save, bind, set — in libvirt order', () => {
  const steps = planPrepare('web1', [netReq], new Map([[VF, vfFacts()]]), free);
  assert.deepEqual(
    steps.map((s) => s.kind),
    ['save-vf-config', 'bind-stub', 'set-vf-config'],
  );
  const set = steps[2];
  assert.ok(set?.kind === 'set-vf-config');
  assert.equal(set.settings.mac, '52:54:00:00:00:01');
  assert.deepEqual(set.settings.vlan, { id: 42 });
  assert.equal(set.pfNetdev, 'enp6s0f0');
});

test('a VF held by another domain is refused, naming the domain', () => {
  const heldByOther = (bdf: string) => (bdf === VF ? 'other' : undefined);
  assert.throws(
    () => planPrepare('web1', [netReq], new Map([[VF, vfFacts()]]), heldByOther),
    (e: unknown) =>
      code('DEVICE_IN_USE')(e) && /VF 0000:06:02.0 of PF enp6s0f0 is in use by domain other/.test(String(e)),
  );
});

test('refusals: missing device, bridge, not a VF, unmanaged on host driver, trunk, split IOMMU group', () => {
  const plan =
    (f: DeviceFacts | undefined, r: HostdevRequest = netReq) =>
    () =>
      planPrepare('web1', [r], new Map([[VF, f]]), free);
  assert.throws(plan(undefined), code('NO_DEVICE'));
  assert.throws(plan(vfFacts({ endpoint: false })), code('DEVICE_NOT_ASSIGNABLE'));
  assert.throws(plan(vfFacts({ vf: undefined })), /SR-IOV Virtual Functions only/);
  assert.throws(plan(vfFacts(), { ...netReq, managed: false }), /must be manually detached/);
  assert.throws(plan(vfFacts(), { ...netReq, net: { vlan: { tags: singleTag(1).tags, trunk: true } } }), /trunking/);
  const peer = { address: parsePciAddress('0000:06:02.1'), driver: 'iavf', endpoint: true };
  assert.throws(plan(vfFacts({ groupPeers: [peer] })), /shares IOMMU group 30 with 0000:06:02.1 \(driver iavf\)/);
});

test('the same device twice in one domain is refused', () => {
  assert.throws(
    () => planPrepare('web1', [netReq, { ...netReq, alias: 'hostdev1' }], new Map([[VF, vfFacts()]]), free),
    /given twice.*hostdev0 and hostdev1/,
  );
});
