import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createSimHost } from '../../src/host/sim/create.ts';
import { injectFault } from '../../src/host/sim/faults.ts';
import type { Client } from '../../src/protocol/client.ts';
import type { AuditEntry, VfTable } from '../../src/protocol/wire.ts';
import { startDaemon, type TestDaemon } from '../helpers/daemon.ts';
import { parsePromText, sampleValue } from '../helpers/prom-text.ts';
import { qemuEnv } from './helpers/env.ts';
import { haltedQemu } from './helpers/halted-qemu.ts';

/**
 * The daemon seen from outside: its metrics and its audit log, around real starts and
 * destroys (a real QEMU whose firmware only halts) on a simulated X710 in a passthrud child.
 */
const env = qemuEnv();
const skip = env.skip ?? false;
const PF0 = '0000:06:00.0';
const MAC = '52:54:00:0b:00:01';
let dir = '';
let daemon: TestDaemon | undefined;
let client: Client;

before(async () => {
  if (env.skip !== undefined) return;
  dir = await mkdtemp(join(tmpdir(), 'passthru-observe-'));
  await createSimHost(join(dir, 'host'), 'intel-x710-2port');
  daemon = await startDaemon(dir, {}, undefined, ['--audit-log', join(dir, 'log', 'audit.jsonl')]);
  client = daemon.client;
  const emulator = await haltedQemu(dir, env.need());
  await client.post('/networks', {
    xml: `<network><name>vfs</name><forward mode='hostdev' managed='yes'><pf dev='enp6s0f0'/></forward><vlan><tag id='10'/></vlan></network>`,
  });
  await client.post('/networks/vfs/start');
  await client.post('/domains', {
    xml: `<domain type='kvm'><name>obs</name><memory unit='MiB'>32</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <devices><emulator>${emulator}</emulator>
    <interface type='network'><mac address='${MAC}'/><source network='vfs'/></interface>
  </devices></domain>`,
  });
});

after(async () => {
  await daemon?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const metrics = async () => {
  const r = await client.getText('/metrics');
  assert.match(r.contentType, /^text\/plain; version=0\.0\.4/);
  return parsePromText(r.text);
};
const audit = (query = '') => client.get<AuditEntry[]>(`/audit${query}`);
const simChanges = async (): Promise<string[]> =>
  (await readFile(join(dir, 'host', 'sim', 'changes'), 'utf8').catch(() => '')).split('\n').filter((l) => l !== '');
const cli = (...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', '-c', join(dir, 'api.sock'), ...args], {
    encoding: 'utf8',
  });

test('/metrics: the VF counts of the PF and of the network move when a domain starts and back when it stops', {
  skip,
}, async () => {
  const vfs = (m: Awaited<ReturnType<typeof metrics>>, state: string) => [
    sampleValue(m, 'passthru_pf_vfs', { pf: PF0, state }),
    sampleValue(m, 'passthru_network_devices', { name: 'vfs', state }),
  ];
  const idle = await metrics();
  assert.deepEqual(vfs(idle, 'free'), [8, 8]);
  assert.deepEqual(vfs(idle, 'leased'), [0, 0]);
  assert.equal(sampleValue(idle, 'passthru_qemu_processes'), 0);

  await client.post('/domains/obs/start');
  const running = await metrics();
  assert.deepEqual(vfs(running, 'free'), [7, 7]);
  assert.deepEqual(vfs(running, 'leased'), [1, 1]);
  assert.equal(sampleValue(running, 'passthru_qemu_processes'), 1);
  assert.equal(sampleValue(running, 'passthru_domains', { state: 'running' }), 1);
  assert.equal(sampleValue(running, 'passthru_operations_total', { action: 'start', result: 'ok' }), 1);
  assert.equal(sampleValue(running, 'passthru_operation_duration_seconds_count', { action: 'start' }), 1);

  await client.post('/domains/obs/destroy');
  const stopped = await metrics();
  assert.deepEqual(vfs(stopped, 'free'), [8, 8]);
  assert.deepEqual(vfs(stopped, 'leased'), [0, 0]);
  assert.equal(sampleValue(stopped, 'passthru_qemu_processes'), 0);
});

test('the audit log: every host change of a start/destroy cycle, in the order the sim kernel made them', {
  skip,
}, async () => {
  const table = () => client.get<VfTable>('/nodedevs/pci_0000_06_00_0/vfs');
  const vfBefore = await table();
  const seen = (await audit()).length;
  const changesBefore = (await simChanges()).length;

  await client.post('/domains/obs/start');
  await client.post('/domains/obs/destroy');

  const entries = (await audit()).slice(seen);
  const changes = (await simChanges()).slice(changesBefore);
  assert.ok(
    entries.every((e) => e.result === 'ok' && e.domain === 'obs'),
    JSON.stringify(entries),
  );
  const ops = entries.map((e) => e.operation);
  const firstDestroy = ops.indexOf('destroy');
  assert.ok(firstDestroy > 0 && ops.slice(0, firstDestroy).every((o) => o === 'start'));
  assert.ok(ops.slice(firstDestroy).every((o) => o === 'destroy'));

  // Each line of the sim kernel's change log (one per operation that changed its tree) is one
  // sysfs write of the log, in the same order, about the same function.
  const sysfs = entries.filter((e) => !['vf-attribute', 'port-profile', 'qemu-start', 'qemu-stop'].includes(e.action));
  assert.equal(sysfs.length, changes.length, `${JSON.stringify(sysfs.map((e) => e.action))} vs ${changes.join('|')}`);
  sysfs.forEach((e, i) =>
    assert.ok(changes[i]?.split(' ').includes(e.device ?? ''), `${e.action} ${e.device} vs ${changes[i]}`),
  );
  const vf = sysfs[0]?.device ?? '';
  assert.deepEqual(
    sysfs.map((e) => [e.operation, e.action, e.before, e.after]),
    [
      ['start', 'driver-override', '(null)', 'vfio-pci'],
      ['start', 'unbind', 'iavf', null],
      ['start', 'probe', null, 'vfio-pci'],
      ['destroy', 'driver-override', 'vfio-pci', 'iavf'],
      ['destroy', 'unbind', 'vfio-pci', null],
      ['destroy', 'probe', null, 'iavf'],
      ['destroy', 'driver-override', 'iavf', '(null)'],
    ],
  );

  // The VF's settings (rtnetlink, not in the tree's log): the guest's MAC and the network's
  // VLAN on the way in, what the VF table had before on the way out.
  const index = vfBefore.vfs.find((r) => r.address === vf)?.vf;
  const row = vfBefore.vfs.find((r) => r.vf === index);
  const attrs = entries.filter((e) => e.action === 'vf-attribute');
  assert.ok(attrs.every((e) => e.device === vf && e.detail === `PF enp6s0f0 VF ${index}`));
  assert.deepEqual(
    attrs.map((e) => [e.operation, e.after]),
    [
      ['start', { mac: MAC }],
      ['start', { vlan: 10, qos: 0 }],
      ['destroy', { mac: row?.mac }],
      ['destroy', { vlan: row?.vlan, qos: row?.qos }],
    ],
  );
  // QEMU: started after the host devices were ready, stopped before they were given back.
  const qemu = entries.filter((e) => e.action.startsWith('qemu-'));
  assert.deepEqual(
    qemu.map((e) => e.action),
    ['qemu-start', 'qemu-stop'],
  );
  const [started, stopped] = qemu;
  assert.ok(started && stopped);
  assert.equal(entries.indexOf(started), firstDestroy - 1);
  assert.equal(entries.indexOf(stopped), firstDestroy);
  assert.deepEqual((started.after as { pid: number }).pid, (stopped.before as { pid: number }).pid);
  assert.deepEqual(await table(), vfBefore);
  // Where --audit-log put it, one JSON line per entry.
  const lines = (await readFile(join(dir, 'log', 'audit.jsonl'), 'utf8')).trimEnd().split('\n');
  assert.deepEqual(
    lines.slice(-entries.length).map((l) => JSON.parse(l) as AuditEntry),
    entries,
  );
});

test('passthru audit: --device keeps that function only, --since a time, --json the entries', { skip }, async () => {
  const all = await audit();
  const vf = all.find((e) => e.action === 'probe')?.device ?? '';
  const json = cli('audit', '--device', vf, '--json');
  assert.equal(json.status, 0, json.stderr);
  const mine = JSON.parse(json.stdout) as AuditEntry[];
  assert.ok(mine.length > 0);
  assert.deepEqual(
    mine,
    all.filter((e) => e.device === vf),
  );
  const other = cli('audit', '--device', '0000:06:02.7', '--json');
  assert.deepEqual(JSON.parse(other.stdout), []);
  const later = cli('audit', '--since', new Date(Date.now() + 60_000).toISOString(), '--json');
  assert.deepEqual(JSON.parse(later.stdout), []);
  const text = cli('audit', '--since', '1h', '--device', vf);
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout, /Action/);
  assert.match(text.stdout, new RegExp(`driver-override +${vf.replaceAll('.', '\\.')} +\\(null\\) -> vfio-pci`));
  const bad = cli('audit', '--since', 'yesterday-ish');
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /--since must be a date and time or an age/);
});

test('a VF asked back from a guest that never lets go counts as unplug_pending; passthru metrics prints the same', {
  skip,
}, async () => {
  const state = (m: Awaited<ReturnType<typeof metrics>>, s: string) => [
    sampleValue(m, 'passthru_pf_vfs', { pf: PF0, state: s }),
    sampleValue(m, 'passthru_network_devices', { name: 'vfs', state: s }),
  ];
  await client.post('/domains/obs/start');
  // The halted firmware never answers the unplug request: the VF stays with the guest, pending.
  const r = await client.post<{ state: string }>('/domains/obs/devices/detach', {
    xml: `<interface type='network'><mac address='${MAC}'/><source network='vfs'/></interface>`,
    live: true,
    timeoutMs: 200,
  });
  assert.equal(r.state, 'unplug-pending');
  const m = await metrics();
  assert.deepEqual(state(m, 'unplug_pending'), [1, 1]);
  assert.deepEqual(state(m, 'leased'), [0, 0]);
  assert.deepEqual(state(m, 'free'), [7, 7]);
  const printed = cli('metrics');
  assert.equal(printed.status, 0, printed.stderr);
  assert.equal(sampleValue(parsePromText(printed.stdout), 'passthru_pf_vfs', { pf: PF0, state: 'unplug_pending' }), 1);
  await client.post('/domains/obs/destroy');
  assert.deepEqual(state(await metrics(), 'unplug_pending'), [0, 0]);
});

test('a VF setting that cannot be restored: counted as a restore failure, and audited as failed', {
  skip,
}, async () => {
  const failures = async () => sampleValue(await metrics(), 'passthru_restore_failures_total') ?? 0;
  const before0 = await failures();
  await client.post('/domains/obs/start');
  const vf = (await audit())
    .filter((e) => e.action === 'vf-attribute')
    .at(-1)
    ?.detail?.split(' ')
    .at(-1);
  await injectFault(join(dir, 'host'), { op: 'setVf', match: `enp6s0f0 vf ${vf} VLAN 0`, nth: 1, errno: 'EIO' });
  await client.post('/domains/obs/destroy');
  assert.equal((await failures()) - before0, 1);
  const failed = (await audit()).filter((e) => e.result === 'failed');
  assert.equal(failed.length, 1);
  assert.equal(failed[0]?.action, 'vf-attribute');
  assert.equal(failed[0]?.operation, 'destroy');
  assert.match(failed[0]?.error ?? '', /EIO/);
});
