import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { PassthruError } from '../../src/conf/error.ts';
import { createSimHost } from '../../src/host/sim/create.ts';
import type { Client } from '../../src/protocol/client.ts';
import type { DomainSummary, XmlBody } from '../../src/protocol/wire.ts';
import { startDaemon, type TestDaemon } from '../helpers/daemon.ts';
import { REPO_ROOT } from './helpers/env.ts';
import { type E2eGuest, e2eGuest } from './helpers/guest.ts';
import { guestXml } from './helpers/guest-xml.ts';

/**
 * CPU, memory and NUMA placement with real QEMU threads: vCPU and emulator pinning read back
 * from /proc/PID/task/TID/status, placement='device' on a sim host with two NUMA nodes mapped
 * to this machine's two CPUs (node 0 -> CPU 0, node 1 -> CPU 1; the ConnectX-5's VFs sit on node
 * 1), and 2 MiB hugepages the test reserves (and gives back).
 */
const env = e2eGuest();
const skip = typeof env === 'string' ? env : process.getuid?.() !== 0 ? 'needs root (hugepages, pinning)' : false;
const NR_HUGEPAGES = '/proc/sys/vm/nr_hugepages';
let dir = '';
let daemon: TestDaemon | undefined;
let client: Client;
let hugepagesBefore = '';

before(async () => {
  if (skip) return;
  hugepagesBefore = (await readFile(NR_HUGEPAGES, 'utf8')).trim();
  dir = await mkdtemp(join(tmpdir(), 'pt-place-'));
  const cx5 = JSON.parse(readFileSync(join(REPO_ROOT, 'src/host/sim/profiles/mellanox-cx5.json'), 'utf8')) as object;
  await createSimHost(join(dir, 'host'), { json: { ...cx5, name: 'cx5-two-nodes', numaCpus: ['0', '1'] } });
  daemon = await startDaemon(dir);
  client = daemon.client;
});

after(async () => {
  if (skip) return;
  for (const n of ['pin-a', 'place-b', 'huge-c', 'huge-d'])
    await client?.post(`/domains/${n}/destroy`).catch(() => undefined);
  await daemon?.stop();
  await writeFile(NR_HUGEPAGES, hugepagesBefore);
  if (dir) await rm(dir, { recursive: true, force: true });
});

function xml(g: E2eGuest, name: string, extra: string, devices = '', vcpus = 1, mib = 128): string {
  return guestXml(g, name, devices, join(dir, `${name}.console`), extra)
    .replace('<vcpu>1</vcpu>', `<vcpu>${vcpus}</vcpu>`)
    .replace("<memory unit='MiB'>256</memory>", `<memory unit='MiB'>${mib}</memory>`);
}

async function qemuPid(name: string): Promise<number> {
  const status = JSON.parse(await readFile(join(dir, 'state', 'run', `${name}.json`), 'utf8')) as { pid: number };
  return status.pid;
}

/** Cpus_allowed_list of each thread, by its name (debug-threads=on names vCPU threads "CPU N/TCG"). */
async function affinities(pid: number): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const tid of await readdir(`/proc/${pid}/task`)) {
    const comm = (await readFile(`/proc/${pid}/task/${tid}/comm`, 'utf8')).trim();
    const status = await readFile(`/proc/${pid}/task/${tid}/status`, 'utf8');
    const allowed = /^Cpus_allowed_list:\s*(\S+)/m.exec(status)?.[1] ?? '?';
    out.set(tid === String(pid) ? 'main' : comm, allowed);
  }
  return out;
}

test('vcpupin and emulatorpin reach the QEMU threads', { skip }, async () => {
  if (typeof env === 'string') return;
  const tune = `
  <cputune>
    <vcpupin vcpu='0' cpuset='1'/>
    <vcpupin vcpu='1' cpuset='0'/>
    <emulatorpin cpuset='0'/>
  </cputune>
  <cpu mode='host-passthrough'><topology sockets='1' dies='1' cores='2' threads='1'/></cpu>`;
  await client.post<XmlBody>('/domains', { xml: xml(env, 'pin-a', tune, '', 2) });
  await client.post('/domains/pin-a/start');
  const a = await affinities(await qemuPid('pin-a'));
  assert.equal(a.get('CPU 0/TCG'), '1');
  assert.equal(a.get('CPU 1/TCG'), '0');
  assert.equal(a.get('main'), '0');
  // TCG: -cpu max whatever the mode, and the live XML says so.
  const live = (await client.get<XmlBody>('/domains/pin-a/xml')).xml;
  assert.match(live, /<cpu mode='maximum'>\s*<topology sockets='1' dies='1' cores='2' threads='1'\/>/);
  const cmdline = readFileSync(`/proc/${await qemuPid('pin-a')}/cmdline`, 'utf8').split('\0');
  assert.equal(cmdline[cmdline.indexOf('-smp') + 1], '2,sockets=1,dies=1,cores=2,threads=1');
  await client.post('/domains/pin-a/destroy');
});

test("placement='device': vCPUs and memory go to the NUMA node of the guest's VF", { skip }, async () => {
  if (typeof env === 'string') return;
  const tune = `
  <numatune><memory mode='strict' placement='device'/></numatune>`;
  const vf = `    <hostdev mode='subsystem' type='pci' managed='yes'>
      <source><address domain='0x0000' bus='0x3b' slot='0x00' function='0x2'/></source>
    </hostdev>`;
  await client.post<XmlBody>('/domains', { xml: xml(env, 'place-b', tune, vf, 2) });
  await client.post('/domains/place-b/start');
  const pid = await qemuPid('place-b');
  const a = await affinities(pid);
  // The VF sits on sim node 1, which the profile maps to CPU 1.
  assert.equal(a.get('CPU 0/TCG'), '1');
  assert.equal(a.get('CPU 1/TCG'), '1');
  assert.equal(a.get('main'), '1');
  // Memory bound to the real node of CPU 1 (this machine has one node, 0).
  const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  assert.match(
    cmdline,
    /"qom-type":"memory-backend-ram","id":"pc.ram","size":134217728,"host-nodes":\[0\],"policy":"bind"/,
  );
  await client.post('/domains/place-b/destroy');
});

const meminfo = async (key: string): Promise<number> =>
  Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(await readFile('/proc/meminfo', 'utf8'))?.[1]);

test('hugepages: the guest RAM comes from the reserved 2 MiB pages; too few is refused with nothing started', {
  skip,
}, async () => {
  if (typeof env === 'string') return;
  await writeFile(NR_HUGEPAGES, '80');
  const total = await meminfo('HugePages_Total');
  assert.ok(total >= 64, `could reserve only ${total} hugepages`);
  const backing = `
  <memoryBacking><hugepages><page size='2048' unit='KiB'/></hugepages></memoryBacking>`;
  await client.post<XmlBody>('/domains', { xml: xml(env, 'huge-c', backing) });
  const freeBefore = await meminfo('HugePages_Free');
  await client.post('/domains/huge-c/start');
  // 128 MiB preallocated from 2 MiB pages: 64 fewer free.
  assert.equal(freeBefore - (await meminfo('HugePages_Free')), 64);
  const maps = await readFile(`/proc/${await qemuPid('huge-c')}/smaps`, 'utf8');
  assert.match(maps, /KernelPageSize:\s+2048 kB/);

  await client.post<XmlBody>('/domains', { xml: xml(env, 'huge-d', backing, '', 1, 256) });
  await assert.rejects(client.post('/domains/huge-d/start'), (e: unknown) => {
    assert.ok(e instanceof PassthruError, String(e));
    assert.equal(e.code, 'HOST_FAILED');
    assert.match(e.message, /domain huge-d needs 128 free 2048 KiB hugepages for its 256 MiB; the host has \d+ free/);
    return true;
  });
  const list = await client.get<DomainSummary[]>('/domains');
  assert.equal(list.find((d) => d.name === 'huge-d')?.state, 'shutoff');
  await client.post('/domains/huge-c/destroy');
  assert.equal(await meminfo('HugePages_Free'), freeBefore);
});
