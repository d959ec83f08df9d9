import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { quickstartXml } from '../../src/cli/run/quickstart.ts';
import { PassthruError } from '../../src/conf/error.ts';
import { createSimHost } from '../../src/host/sim/create.ts';
import type { DomainSummary } from '../../src/protocol/wire.ts';
import { startDaemon, vfRow, vfState } from '../helpers/daemon.ts';
import { e2eGuest } from './helpers/guest.ts';

/** The crash tier's worst start: passthrud dies after QEMU is up (paused, holding the VF) and
 *  before the start is complete. The next daemon must kill that QEMU and give the VF back. */
const env = e2eGuest();
const PF = 'pci_0000_06_00_0';

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test('killed between QEMU launch and the end of start: the next daemon kills that QEMU and restores the VF', {
  skip: typeof env === 'string' ? env : false,
}, async () => {
  if (typeof env === 'string') return;
  const dir = await mkdtemp(join(tmpdir(), 'passthru-crash-start-'));
  try {
    await createSimHost(join(dir, 'host'), 'intel-x710-2port');
    const first = await startDaemon(dir, { PASSTHRU_FAULT_CRASH_AT: 'qemu-launched' });
    let qemuPid = 0;
    const before2 = await vfRow(first.client, PF, 2);
    try {
      await first.client.post('/domains', { xml: quickstartXml(before2.address, env, join(dir, 'console.log')) });
      const exited = new Promise((r) => first.proc.once('exit', (_c, sig) => r(sig)));
      await assert.rejects(first.client.post('/domains/quickstart/start'), PassthruError);
      assert.equal(await exited, 'SIGKILL');
      qemuPid = Number((await readFile(join(dir, 'state', 'run', 'quickstart', 'qemu.pid'), 'utf8')).trim());
      assert.ok(alive(qemuPid), 'the QEMU of the unfinished start is left running by the dead daemon');
    } finally {
      await first.kill();
    }

    const second = await startDaemon(dir);
    try {
      assert.equal(alive(qemuPid), false, 'the next daemon killed it');
      assert.deepEqual(vfState(await vfRow(second.client, PF, 2)), vfState(before2));
      const [d] = await second.client.get<DomainSummary[]>('/domains');
      assert.equal(d?.state, 'shutoff');
    } finally {
      await second.stop();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
