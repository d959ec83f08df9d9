import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { PassthruError } from '../../src/conf/error.ts';
import { migrate } from '../../src/qemu/migration.ts';
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
