import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { buildApi } from '../../src/daemon/api.ts';
import type { Daemon } from '../../src/daemon/daemon.ts';
import { openDaemon } from '../../src/daemon/open.ts';
import { createSimHost } from '../../src/host/sim/create.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { PassthruError } from '../../src/conf/error.ts';
import { DaemonMetrics } from '../../src/daemon/metrics.ts';
import { parsePromText, sampleValue } from '../helpers/prom-text.ts';

/** GET /metrics of a daemon on a sim host, read with a strict exposition-format reader. */
let dir = '';
let daemon: Daemon;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'passthru-metrics-'));
  await createSimHost(join(dir, 'host'), 'intel-x710-2port');
  daemon = await openDaemon({ host: `sim:${join(dir, 'host')}`, stateDir: join(dir, 'state'), log: silentLogger() });
});
after(async () => {
  await daemon.close();
  await rm(dir, { recursive: true, force: true });
});

async function scrape() {
  const app = buildApi(daemon, { readOnly: true });
  try {
    const r = await app.inject({ method: 'GET', url: '/metrics' });
    assert.equal(r.statusCode, 200, r.body);
    assert.equal(r.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
    return parsePromText(r.body);
  } finally {
    await app.close();
  }
}

test('GET /metrics is Prometheus text: every family typed, the VFs of each PF by state', async () => {
  const m = await scrape();
  const type = (name: string) => m.get(name)?.type;
  assert.equal(type('passthru_operations_total'), 'counter');
  assert.equal(type('passthru_operation_duration_seconds'), 'histogram');
  assert.equal(type('passthru_restore_failures_total'), 'counter');
  assert.equal(type('passthru_migrations_total'), 'counter');
  assert.equal(type('passthru_migration_downtime_seconds'), 'histogram');
  assert.equal(type('passthru_pf_vfs'), 'gauge');
  assert.equal(type('passthru_network_devices'), 'gauge');
  assert.equal(type('passthru_qemu_processes'), 'gauge');
  // The sim X710: 8 VFs on each PF, none given to anyone.
  for (const pf of ['0000:06:00.0', '0000:06:00.1']) {
    assert.equal(sampleValue(m, 'passthru_pf_vfs', { pf, state: 'free' }), 8, pf);
    for (const state of ['leased', 'quarantined', 'unplug_pending'])
      assert.equal(sampleValue(m, 'passthru_pf_vfs', { pf, state }), 0, `${pf} ${state}`);
  }
  assert.equal(sampleValue(m, 'passthru_qemu_processes'), 0);
  assert.equal(sampleValue(m, 'passthru_restore_failures_total'), 0);
});

test('the reader is strict: each broken exposition is refused', () => {
  const bad: [string, RegExp][] = [
    ['x_total 1\n', /no TYPE before it/],
    ['# TYPE x counter\nx 1', /newline/],
    ['# TYPE x counter\nx{a="1"} 1\nx{a="1"} 2\n', /same series twice/],
    ['# TYPE x counter\nx{a="\\q"} 1\n', /bad label pair/],
    ['# TYPE x counter\nx{1a="v"} 1\n', /bad label name/],
    ['# TYPE x counter\nx one\n', /bad value/],
    ['# TYPE x gauge\n# TYPE x gauge\nx 1\n', /second TYPE/],
    ['# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_count 1\n', /not cumulative/],
    ['# TYPE h histogram\nh_bucket{le="1"} 1\nh_count 1\n', /no \+Inf bucket/],
    ['# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_count 1\n', /_count is not the \+Inf bucket/],
  ];
  for (const [text, why] of bad) assert.throws(() => parsePromText(text), why, JSON.stringify(text));
});

test('each action is counted by result and timed, at the door', async () => {
  const before0 = await scrape();
  const ok = (m: typeof before0) => sampleValue(m, 'passthru_operations_total', { action: 'list', result: 'ok' }) ?? 0;
  const failed = (m: typeof before0) =>
    sampleValue(m, 'passthru_operations_total', { action: 'start', result: 'NO_DOMAIN' }) ?? 0;
  const timed = (m: typeof before0) =>
    sampleValue(m, 'passthru_operation_duration_seconds_count', { action: 'list' }) ?? 0;
  await daemon.handle({ kind: 'list' });
  await daemon.handle({ kind: 'list' });
  await assert.rejects(daemon.handle({ kind: 'start', name: 'ghost' }));
  const after0 = await scrape();
  assert.equal(ok(after0) - ok(before0), 2);
  assert.equal(failed(after0) - failed(before0), 1);
  assert.equal(timed(after0) - timed(before0), 2);
  // The scrapes themselves are actions too.
  assert.ok((sampleValue(after0, 'passthru_operations_total', { action: 'metrics', result: 'ok' }) ?? 0) >= 1);
});

test('a migration is counted by result, and its downtime observed as QEMU reported it', async () => {
  const metrics = new DaemonMetrics();
  metrics.operation('migrate', 2.5, { ok: { name: 'web1', downtimeMs: 42 } });
  metrics.operation('migrate', 0.1, { err: new PassthruError('QEMU_FAILED', 'no VF on the destination') });
  metrics.operation('migrateIncoming', 0.2, { ok: {} });
  const idle = () => Promise.resolve({ pfVfs: [], pools: [], domains: [], qemuProcesses: 0 });
  const m = parsePromText(await metrics.scrape(idle));
  assert.equal(sampleValue(m, 'passthru_migrations_total', { result: 'ok' }), 1);
  assert.equal(sampleValue(m, 'passthru_migrations_total', { result: 'QEMU_FAILED' }), 1);
  assert.equal(sampleValue(m, 'passthru_migration_downtime_seconds_count'), 1);
  assert.equal(sampleValue(m, 'passthru_migration_downtime_seconds_sum'), 0.042);
  assert.equal(sampleValue(m, 'passthru_migration_downtime_seconds_bucket', { le: '0.05' }), 1);
  assert.equal(sampleValue(m, 'passthru_migration_downtime_seconds_bucket', { le: '0.01' }), 0);
  assert.equal(sampleValue(m, 'passthru_operations_total', { action: 'migrateIncoming', result: 'ok' }), 1);
});
