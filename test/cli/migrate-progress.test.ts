import assert from 'node:assert/strict';
import { test } from 'node:test';
import { progressLine, summary } from '../../src/cli/run/migration.ts';

/** What `passthru migrate` shows on a terminal: one line redrawn per event, then the figures. */
const MiB = 1024 * 1024;

test('the progress line names the phase, QEMU status, RAM sent as a bar, and the VF-less window so far', () => {
  assert.equal(
    progressLine({
      type: 'migration',
      name: 'web1',
      role: 'source',
      phase: 'transfer',
      status: 'active',
      ramTransferred: 64 * MiB,
      ramTotal: 256 * MiB,
      vfLessMs: 1234,
    }),
    'migrating web1: transfer (active)  [#####...............] 64/256 MiB  VF-less 1.2 s',
  );
  assert.equal(
    progressLine({ type: 'migration', name: 'web1', role: 'source', phase: 'prepare' }),
    'migrating web1: prepare',
  );
});

test('a rollback a deadline made says which', () => {
  assert.equal(
    progressLine({ type: 'migration', name: 'web1', role: 'source', phase: 'rolled-back', reason: 'stalled' }),
    'migrating web1: rolled-back (stalled)',
  );
});

test('the summary gives the total, QEMU figures and the VF-less window', () => {
  assert.equal(
    summary({
      name: 'web1',
      dest: 'tls://10.0.0.2:16514',
      totalMs: 886,
      qemuTotalMs: 719,
      downtimeMs: 12,
      vfLessMs: 710,
      statuses: ['setup', 'wait-unplug', 'active', 'completed'],
      unplugged: ['hostdev0'],
      phases: [],
    }),
    "Migration of 'web1' to tls://10.0.0.2:16514: done\n  total 886 ms, QEMU 719 ms, downtime 12 ms, VF-less window 710 ms\n",
  );
});
