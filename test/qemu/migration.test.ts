import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { PassthruError } from '../../src/conf/error.ts';
import { migrate, QEMU_MAX_BANDWIDTH, sendMigration, stallWatch, UNPLUG_STALL_MS } from '../../src/qemu/migration.ts';
import { QmpClient } from '../../src/qemu/qmp.ts';
import { fakeQmp, type Peer } from './helpers/fake-qmp.ts';

let dir = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pt-mig-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const ev = (peer: Peer, event: string, data: Record<string, unknown>): void => {
  peer.send({ event, data, timestamp: { seconds: 0, microseconds: 0 } });
};

/** A source that goes through `outcome` after `migrate`, and a destination listening on 41234. */
async function pair(outcome: 'completed' | 'failed') {
  const src = await fakeQmp(dir, (msg, peer) => {
    if (msg.execute === 'query-migrate') {
      peer.send({
        return:
          outcome === 'completed'
            ? { status: 'completed', 'total-time': 686, downtime: 3 }
            : { status: 'failed', 'error-desc': 'Unable to write to socket: Broken pipe' },
        id: msg.id,
      });
      return;
    }
    peer.send({ return: {}, id: msg.id });
    if (msg.execute === 'migrate') {
      ev(peer, 'MIGRATION', { status: 'setup' });
      ev(peer, 'UNPLUG_PRIMARY', { 'device-id': 'hostdev0' });
      ev(peer, 'MIGRATION', { status: 'wait-unplug' });
      ev(peer, 'MIGRATION', { status: 'active' });
      ev(peer, 'MIGRATION', { status: outcome });
    }
  });
  const dst = await fakeQmp(dir, (msg, peer) => {
    if (msg.execute === 'query-migrate') {
      peer.send({ return: { 'socket-address': [{ type: 'inet', host: '127.0.0.1', port: '41234' }] }, id: msg.id });
    } else peer.send({ return: {}, id: msg.id });
  });
  return { src, dst, srcQmp: await QmpClient.connect(src.path), dstQmp: await QmpClient.connect(dst.path) };
}

test('migrate: events on both sides, destination port resolved, statuses and the unplugged primary reported', async () => {
  const p = await pair('completed');
  try {
    const result = await migrate(p.srcQmp, p.dstQmp, { listen: 'tcp:127.0.0.1:0' });
    assert.deepEqual(result, {
      status: 'completed',
      totalTimeMs: 686,
      downtimeMs: 3,
      statuses: ['setup', 'wait-unplug', 'active', 'completed'],
      unpluggedPrimaries: ['hostdev0'],
    });
    assert.deepEqual(
      p.dst.received.map((m) => m.execute),
      ['qmp_capabilities', 'migrate-set-capabilities', 'migrate-incoming', 'query-migrate'],
    );
    assert.deepEqual(p.dst.received[2]?.arguments, { uri: 'tcp:127.0.0.1:0' });
    const sent = p.src.received.find((m) => m.execute === 'migrate');
    assert.deepEqual(sent?.arguments, { uri: 'tcp:127.0.0.1:41234' });
  } finally {
    await p.srcQmp.close();
    await p.dstQmp.close();
    p.src.server.close();
    p.dst.server.close();
  }
});

test("migrate: a failed migration is QEMU_FAILED with QEMU's reason", async () => {
  const p = await pair('failed');
  try {
    await assert.rejects(
      migrate(p.srcQmp, p.dstQmp, { listen: 'tcp:127.0.0.1:0' }),
      (e: unknown) =>
        e instanceof PassthruError &&
        e.code === 'QEMU_FAILED' &&
        e.message.includes('migration failed: Unable to write to socket'),
    );
  } finally {
    await p.srcQmp.close();
    await p.dstQmp.close();
    p.src.server.close();
    p.dst.server.close();
  }
});

/** A source whose RAM sent grows by `step` bytes per query-migrate until `completeAfter` queries
 *  (then completed); step 0 never moves. migrate_cancel ends it as QEMU does. */
async function sendingSource(step: number, completeAfter: number) {
  let queries = 0;
  let final: string | undefined;
  const src = await fakeQmp(dir, (msg, peer) => {
    if (msg.execute === 'query-migrate') {
      queries++;
      if (final === undefined && queries > completeAfter) {
        final = 'completed';
        ev(peer, 'MIGRATION', { status: final });
      }
      peer.send({
        return: { status: final ?? 'active', ram: { transferred: queries * step, total: 1 << 28 } },
        id: msg.id,
      });
      return;
    }
    peer.send({ return: {}, id: msg.id });
    if (msg.execute === 'migrate') {
      ev(peer, 'MIGRATION', { status: 'setup' });
      ev(peer, 'MIGRATION', { status: 'active' });
    }
    if (msg.execute === 'migrate_cancel' && final === undefined) {
      final = 'cancelled';
      ev(peer, 'MIGRATION', { status: 'cancelled' });
    }
  });
  return { src, qmp: await QmpClient.connect(src.path) };
}

test('a migration whose RAM sent stops moving is cancelled at the stall deadline, and says so', async () => {
  const s = await sendingSource(0, Number.POSITIVE_INFINITY);
  const stalls: string[] = [];
  try {
    await assert.rejects(
      sendMigration(s.qmp, 'tcp:127.0.0.1:41234', {
        stallMs: 300,
        progressEveryMs: 20,
        timeoutMs: 30_000,
        maxBandwidth: 1 << 20,
        onStall: (why) => stalls.push(why),
      }),
      (e: unknown) =>
        e instanceof PassthruError &&
        e.code === 'TIMEOUT' &&
        /^no progress for 0\.3 s \(status active, 0\.0 MiB sent\): migration cancelled$/.test(e.message),
    );
    assert.equal(stalls.length, 1);
    assert.ok(s.src.received.some((m) => m.execute === 'migrate_cancel'));
    const params = s.src.received.find((m) => m.execute === 'migrate-set-parameters');
    assert.equal(params?.arguments?.['max-bandwidth'], 1 << 20);
  } finally {
    await s.qmp.close();
    s.src.server.close();
  }
});

test('a slow migration whose RAM sent keeps moving is not a stall; without a cap QEMU gets its default back', async () => {
  const s = await sendingSource(4096, 40);
  try {
    const r = await sendMigration(s.qmp, 'tcp:127.0.0.1:41234', { stallMs: 300, progressEveryMs: 20 });
    assert.equal(r.status, 'completed');
    assert.ok(!s.src.received.some((m) => m.execute === 'migrate_cancel'));
    const params = s.src.received.find((m) => m.execute === 'migrate-set-parameters');
    assert.equal(params?.arguments?.['max-bandwidth'], QEMU_MAX_BANDWIDTH);
  } finally {
    await s.qmp.close();
    s.src.server.close();
  }
});

test('the stall clock restarts on every status change; wait-unplug has its own, longer deadline', () => {
  const w = stallWatch(1000);
  const p = (status: string, sent: number) => ({ status, ramTransferred: sent, ramTotal: 0, ramRemaining: 0 });
  assert.equal(w.see(p('wait-unplug', 0), 0), undefined);
  assert.equal(w.see(p('wait-unplug', 0), 5000), undefined);
  assert.equal(w.see(p('wait-unplug', 0), UNPLUG_STALL_MS - 1), undefined);
  assert.equal(
    w.see(p('wait-unplug', 0), UNPLUG_STALL_MS),
    `the guest did not let go of its VF for ${UNPLUG_STALL_MS / 1000} s (status wait-unplug): migration cancelled`,
  );
  assert.equal(w.see(p('active', 0), 5001), undefined);
  assert.equal(w.see(p('active', 0), 5900), undefined);
  assert.equal(w.see(p('active', 10), 6500), undefined);
  assert.match(w.see(p('active', 10), 7600) ?? '', /^no progress for 1 s/);
});

test("QEMU's figures read after 'completed' are asked again while QEMU has not computed them yet (0)", async () => {
  let asked = 0;
  const src = await fakeQmp(dir, (msg, peer) => {
    if (msg.execute === 'query-migrate') {
      asked++;
      // QEMU 7.2 sets `completed` before migration_calculate_complete fills total-time and downtime.
      const ready = asked >= 3;
      peer.send({
        return: { status: 'completed', 'total-time': ready ? 712 : 0, downtime: ready ? 9 : 0 },
        id: msg.id,
      });
      return;
    }
    peer.send({ return: {}, id: msg.id });
    if (msg.execute === 'migrate') ev(peer, 'MIGRATION', { status: 'completed' });
  });
  const qmp = await QmpClient.connect(src.path);
  try {
    const r = await sendMigration(qmp, 'tcp:127.0.0.1:41234');
    assert.equal(r.totalTimeMs, 712);
    assert.equal(r.downtimeMs, 9);
  } finally {
    await qmp.close();
    src.server.close();
  }
});
