import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createSimHost } from '../../src/host/sim/create.ts';
import type { DeviceChange, DomainSummary } from '../../src/protocol/wire.ts';
import { startDaemon, type TestDaemon } from '../helpers/daemon.ts';
import { ensureQemuUser, QEMU_USER } from '../helpers/qemu-user.ts';
import { waitForScan } from './helpers/console.ts';
import { e2eGuest } from './helpers/guest.ts';

/**
 * passthrud --qemu-user on a simulated X710 host with real QEMU (TCG) and the tiny guest: QEMU
 * runs as an unprivileged user that owns, while it runs, its run directory, disk image, console
 * file and the sim's /dev/vfio/N of each assigned VF's IOMMU group (a hot-plugged VF's too); they
 * are root's again after hot-unplug, destroy, a failed start, and a daemon killed with QEMU
 * dying while it was down. The VFs are managed='no' (nodedev-detach first), so their group
 * nodes outlive the domain and can be looked at after.
 */
const env = e2eGuest();
const skip = typeof env === 'string' ? env : process.getuid?.() !== 0 ? 'needs root (--qemu-user)' : false;
let dir = '';
let daemon: TestDaemon;
let user = { uid: -1, gid: -1 };

before(async () => {
  if (skip) return;
  user = ensureQemuUser();
  dir = await mkdtemp(join(tmpdir(), 'pt-qu-'));
  // QEMU (not root) must pass through here to reach its run directory and console file.
  await chmod(dir, 0o711);
  await createSimHost(join(dir, 'host'), 'intel-x710-2port');
  daemon = await startDaemon(dir, {}, undefined, ['--qemu-user', QEMU_USER]);
  for (const vf of [1, 2]) await daemon.client.post(`/nodedevs/pci_0000_06_02_${vf}/detach`);
});

after(async () => {
  if (skip) return;
  for (const d of await daemon.client.get<DomainSummary[]>('/domains').catch(() => [])) {
    if (d.state === 'running') await daemon.client.post(`/domains/${d.name}/destroy`).catch(() => undefined);
  }
  await daemon.stop();
  await rm(dir, { recursive: true, force: true });
});

const vfXml = (vf: number, mac: string): string => `<interface type='hostdev' managed='no'>
  <mac address='${mac}'/>
  <source><address type='pci' domain='0x0000' bus='0x06' slot='0x02' function='0x${vf}'/></source>
</interface>`;

function domainXml(name: string, emulator = ''): string {
  if (typeof env === 'string') throw new Error(env);
  return `<domain type='kvm'><name>${name}</name><memory unit='MiB'>256</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type><kernel>${env.kernel}</kernel><initrd>${env.initrd}</initrd>
  <cmdline>${env.append}</cmdline></os>
  <devices>${emulator}
    <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='${join(dir, `${name}.img`)}'/>
      <target dev='vda' bus='virtio'/></disk>
    ${vfXml(1, '52:54:00:00:0c:01')}
    <serial type='file'><source path='${join(dir, `${name}.console`)}'/><target port='0'/></serial>
  </devices></domain>`;
}

async function ownerOf(path: string): Promise<string> {
  const st = await stat(path);
  return `${st.uid}:${st.gid}`;
}

/** The sim's /dev/vfio/N of a VF (its IOMMU group's node). */
async function groupNode(vf: number): Promise<string> {
  const link = await readlink(join(dir, 'host/sys/bus/pci/devices', `0000:06:02.${vf}`, 'iommu_group'));
  return join(dir, 'host/dev/vfio', basename(link));
}

async function procIds(pid: number): Promise<string> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  const field = (f: string): string =>
    text
      .split('\n')
      .find((l) => l.startsWith(`${f}:`))
      ?.split('\t')[1] ?? '';
  return `${field('Uid')}:${field('Gid')}`;
}

const guestSees = (console: string, mac: string, present: boolean): Promise<unknown> =>
  waitForScan(console, (nics) => nics.some((n) => n.mac === mac) === present);

test('QEMU runs as the QEMU user and owns its files and /dev/vfio/N while it runs; root owns them after', {
  skip,
}, async () => {
  const me = `${user.uid}:${user.gid}`;
  const { client } = daemon;
  await writeFile(join(dir, 'qu-a.img'), Buffer.alloc(1 << 20));
  await client.post('/domains', { xml: domainXml('qu-a') });
  const started = await client.post<DomainSummary>('/domains/qu-a/start');
  const pid = started.pid ?? 0;
  const console = join(dir, 'qu-a.console');
  const runDir = join(dir, 'state/run/qu-a');
  const lent = [
    runDir,
    join(runDir, 'qmp.sock'),
    join(runDir, 'qemu.pid'),
    join(dir, 'qu-a.img'),
    console,
    await groupNode(1),
  ];
  await guestSees(console, '52:54:00:00:0c:01', true);
  assert.equal(await procIds(pid), me, 'QEMU runs as the QEMU user');
  for (const p of lent) assert.equal(await ownerOf(p), me, p);

  // Hot-plug lends the new VF's group; the unplug the guest finishes gives it back.
  const node2 = await groupNode(2);
  assert.equal(await ownerOf(node2), '0:0');
  await client.post('/domains/qu-a/devices', { xml: vfXml(2, '52:54:00:00:0c:02') });
  assert.equal(await ownerOf(node2), me);
  await guestSees(console, '52:54:00:00:0c:02', true);
  const r = await client.post<DeviceChange>('/domains/qu-a/devices/detach', {
    xml: vfXml(2, '52:54:00:00:0c:02'),
    timeoutMs: 60_000,
  });
  assert.equal(r.state, 'detached', r.message);
  assert.equal(await ownerOf(node2), '0:0');
  assert.equal(await ownerOf(await groupNode(1)), me, 'the other VF stays lent');

  await client.post('/domains/qu-a/destroy');
  for (const p of lent.filter((p) => !p.endsWith('.sock') && !p.endsWith('.pid'))) {
    assert.equal(await ownerOf(p), '0:0', p);
  }
  assert.deepEqual(
    (JSON.parse(await readFile(join(dir, 'state/owners.json'), 'utf8')) as { entries: unknown[] }).entries,
    [],
  );
});

test('a start that fails gives everything back', { skip }, async () => {
  const { client } = daemon;
  await writeFile(join(dir, 'qu-b.img'), Buffer.alloc(1 << 20));
  await client.post('/domains', { xml: domainXml('qu-b', '<emulator>/bin/false</emulator>') });
  await assert.rejects(client.post('/domains/qu-b/start'), /QEMU of domain qu-b exited with code 1/);
  for (const p of [join(dir, 'qu-b.img'), join(dir, 'qu-b.console'), await groupNode(1)]) {
    assert.equal(await ownerOf(p), '0:0', p);
  }
});

test('the daemon killed, then QEMU dying while no daemon runs: the next daemon gives everything back', {
  skip,
}, async () => {
  const me = `${user.uid}:${user.gid}`;
  const started = await daemon.client.post<DomainSummary>('/domains/qu-a/start');
  const lent = [join(dir, 'state/run/qu-a'), join(dir, 'qu-a.img'), join(dir, 'qu-a.console'), await groupNode(1)];
  for (const p of lent) assert.equal(await ownerOf(p), me, p);
  await daemon.kill();
  process.kill(started.pid ?? 0, 'SIGKILL');
  // Gone, or a zombie nobody reaps yet: either way it holds nothing any more.
  for (let i = 0; i < 200; i++) {
    const st = await readFile(`/proc/${started.pid ?? 0}/status`, 'utf8').catch(() => 'State:\tX');
    if (/^State:\s+[ZX]/m.test(st)) break;
    await sleep(50);
  }
  daemon = await startDaemon(dir, {}, undefined, ['--qemu-user', QEMU_USER]);
  const list = await daemon.client.get<DomainSummary[]>('/domains');
  assert.equal(list.find((d) => d.name === 'qu-a')?.state, 'shutoff');
  for (const p of lent) assert.equal(await ownerOf(p), '0:0', p);
});

/** The domain's state and reason once a QEMU it ran, killed here, is noticed by the daemon. */
async function killedAndNoticed(name: string, pid: number): Promise<string> {
  let opened: () => void = () => undefined;
  const open = new Promise<void>((r) => (opened = r));
  const stopped = daemon.client.events((e) => e.type === 'domain' && e.event === 'stopped' && e.name === name, opened);
  await open;
  process.kill(pid, 'SIGKILL');
  await stopped;
  const d = (await daemon.client.get<DomainSummary[]>('/domains')).find((x) => x.name === name);
  return `${d?.state} ${d?.reason}`;
}

test('a QEMU of the QEMU user killed while the daemon runs, also one an earlier daemon started: noticed, shut off (crashed), all given back', {
  skip,
}, async () => {
  const me = `${user.uid}:${user.gid}`;
  const lent = [join(dir, 'state/run/qu-a'), join(dir, 'qu-a.img'), join(dir, 'qu-a.console'), await groupNode(1)];
  const ledger = async (): Promise<number> =>
    (JSON.parse(await readFile(join(dir, 'state/owners.json'), 'utf8')) as { entries: unknown[] }).entries.length;

  // Started by this daemon: QEMU is its child.
  const first = await daemon.client.post<DomainSummary>('/domains/qu-a/start');
  for (const p of lent) assert.equal(await ownerOf(p), me, p);
  assert.equal(await killedAndNoticed('qu-a', first.pid ?? 0), 'shutoff crashed');
  for (const p of lent) assert.equal(await ownerOf(p), '0:0', p);
  assert.equal(await ledger(), 0);

  // Started by an earlier daemon: the next one takes it back, lent as it was, and notices its end.
  const second = await daemon.client.post<DomainSummary>('/domains/qu-a/start');
  await daemon.kill();
  daemon = await startDaemon(dir, {}, undefined, ['--qemu-user', QEMU_USER]);
  const back = (await daemon.client.get<DomainSummary[]>('/domains')).find((d) => d.name === 'qu-a');
  assert.deepEqual([back?.state, back?.pid], ['running', second.pid], 'the running QEMU is taken back');
  assert.equal(await procIds(second.pid ?? 0), me);
  for (const p of lent) assert.equal(await ownerOf(p), me, p);
  assert.ok((await ledger()) > 0, 'what is lent stays recorded');
  assert.equal(await killedAndNoticed('qu-a', second.pid ?? 0), 'shutoff crashed');
  for (const p of lent) assert.equal(await ownerOf(p), '0:0', p);
  assert.equal(await ledger(), 0);
});
