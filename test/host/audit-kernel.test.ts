import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parsePciAddress } from '../../src/conf/pci-address.ts';
import { type AuditEntry, AuditTrail, withAuditScope } from '../../src/host/audit.ts';
import { auditedKernel } from '../../src/host/audit-kernel.ts';
import { bindToStub, rebindHostDriver } from '../../src/host/bind.ts';
import { injectFault } from '../../src/host/sim/faults.ts';
import { setVfCount } from '../../src/host/sriov.ts';
import { hostError, simHost } from './helpers.ts';

const VF0 = parsePciAddress('0000:06:02.0');
const PF1 = parsePciAddress('0000:06:00.1');

function trail(holder?: (bdf: string) => string | undefined): { trail: AuditTrail; entries: AuditEntry[] } {
  const entries: AuditEntry[] = [];
  const t = new AuditTrail({
    append: (e) => {
      entries.push(e);
      return Promise.resolve();
    },
    onError: (err) => {
      throw err;
    },
    now: () => new Date('2026-11-30T06:00:00Z'),
  });
  if (holder) t.resolveDomainsWith(holder);
  return { trail: t, entries };
}

const brief = (e: AuditEntry) => [e.action, e.device, e.before, e.after, e.result];

test('binding through the audited kernel: each write is one entry, with the driver before and after, for the scope domain', async () => {
  const { kernel, done } = await simHost();
  try {
    const { trail: t, entries } = trail();
    const audited = auditedKernel(kernel, t);
    await withAuditScope({ operation: 'start', domain: 'web1' }, () => bindToStub(audited, VF0));
    assert.deepEqual(entries.map(brief), [
      ['driver-override', '0000:06:02.0', '(null)', 'vfio-pci', 'ok'],
      ['unbind', '0000:06:02.0', 'iavf', null, 'ok'],
      ['probe', '0000:06:02.0', null, 'vfio-pci', 'ok'],
    ]);
    for (const e of entries) {
      assert.equal(e.domain, 'web1');
      assert.equal(e.operation, 'start');
      assert.equal(e.time, '2026-11-30T06:00:00.000Z');
    }
    // Reads are not recorded; a write made outside any scope names no operation.
    entries.splice(0);
    await audited.vfTable('enp6s0f0');
    assert.equal(entries.length, 0);
    await rebindHostDriver(audited, VF0, 'iavf');
    assert.ok(entries.length > 0 && entries.every((e) => e.operation === undefined && e.domain === undefined));
    assert.equal(entries.at(-1)?.after, '(null)', 'the override is cleared last');
  } finally {
    done();
  }
});

test('a VF attribute: the VF by its address, only the fields set, before and after as the PF reports them', async () => {
  const { kernel, done } = await simHost();
  try {
    const { trail: t, entries } = trail((bdf) => (bdf === '0000:06:02.3' ? 'db1' : undefined));
    const audited = auditedKernel(kernel, t);
    await audited.setVf('enp6s0f0', 3, { vlan: { id: 42 } });
    assert.deepEqual(entries, [
      {
        time: '2026-11-30T06:00:00.000Z',
        action: 'vf-attribute',
        // No scope: the lease holder names the domain (the journal's recovery at daemon start).
        domain: 'db1',
        device: '0000:06:02.3',
        detail: 'PF enp6s0f0 VF 3',
        before: { vlan: 0, qos: 0 },
        after: { vlan: 42, qos: 0 },
        result: 'ok',
      },
    ]);
  } finally {
    done();
  }
});

test('a failed write is recorded as failed with its error, and still fails; host-wide work names no domain', async () => {
  const { dir, kernel, done } = await simHost();
  try {
    const { trail: t, entries } = trail(() => 'web1');
    const audited = auditedKernel(kernel, t);
    await injectFault(dir, { op: 'writeSysfs', match: 'sriov_numvfs=3', nth: 1, errno: 'EIO' });
    await assert.rejects(
      withAuditScope({ operation: 'nodedevSriov', hostWide: true }, () => setVfCount(audited, PF1, 3)),
      hostError('HOST_FAILED', 'EIO'),
    );
    assert.deepEqual(entries.map(brief), [
      ['vf-count', '0000:06:00.1', '8', '0', 'ok'],
      ['vf-count', '0000:06:00.1', '0', '0', 'failed'],
    ]);
    assert.match(entries[1]?.error ?? '', /EIO/);
    assert.ok(entries.every((e) => e.domain === undefined && e.operation === 'nodedevSriov'));
  } finally {
    done();
  }
});
