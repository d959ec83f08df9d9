import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { PassthruError } from '../../src/conf/error.ts';
import { createSimHost } from '../../src/host/sim/create.ts';
import type { DomainSummary } from '../../src/protocol/wire.ts';
import { startDaemon, vfRow, vfState } from '../helpers/daemon.ts';
import { vfDomainXml } from '../helpers/domains.ts';

/**
 * The crash tier: passthrud is SIGKILLed right after each write of its device record during a
 * start (step running, step done, ...); a new daemon on the same state must give the host back
 * whole — the VF's admin MAC, VLAN and driver as before, no lease left behind.
 */
let dir = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'passthru-crash-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const PF = 'pci_0000_06_00_0';
const XML = vfDomainXml('crashy', 5, { mac: '52:54:00:cc:00:01', vlan: 99 });

// 3 steps (save, bind, set): one journal write as each starts, and the commit.
for (const at of [1, 2, 3, 4].flatMap((n) => [`journal-before:${n}`, `journal-after:${n}`])) {
  test(`killed at ${at}: the next daemon restores the VF`, async () => {
    const run = join(dir, at.replace(':', '-'));
    await createSimHost(join(run, 'host'), 'intel-x710-2port');
    const first = await startDaemon(run, { PASSTHRU_FAULT_CRASH_AT: at });
    let before0;
    try {
      before0 = await vfRow(first.client, PF, 5);
      await first.client.post('/domains', { xml: XML });
      const exited = new Promise((r) => first.proc.once('exit', (_c, sig) => r(sig)));
      await assert.rejects(first.client.post('/domains/crashy/start'), PassthruError);
      assert.equal(await exited, 'SIGKILL');
    } finally {
      await first.kill();
    }

    const second = await startDaemon(run);
    try {
      const after0 = await vfRow(second.client, PF, 5);
      assert.deepEqual(vfState(after0), vfState(before0));
      assert.ok(after0.netdev, 'the VF has its host netdev back');
      const [d] = await second.client.get<DomainSummary[]>('/domains');
      assert.equal(d?.state, 'shutoff');
      // No lease is left: the next start gets past the device manager (and fails only at QEMU).
      await assert.rejects(
        second.client.post('/domains/crashy/start'),
        (e: unknown) => e instanceof PassthruError && e.code === 'QEMU_FAILED',
      );
      assert.deepEqual(vfState(await vfRow(second.client, PF, 5)), vfState(before0));
    } finally {
      await second.stop();
    }
  });
}
