import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { findGuest, findQemu } from '../../src/cli/local.ts';
import { quickstartXml } from '../../src/cli/run/quickstart.ts';
import { createSimHost } from '../../src/host/sim/create.ts';
import { startDaemon } from '../../test/helpers/daemon.ts';
import { type Figure, samples, skipped } from '../lib/figure.ts';

/**
 * The guest around the VF (real QEMU under TCG, sim host): the `start` call of a domain holding
 * a VF, without and with a qcow2 disk on a backing file (the chain read from the headers, the
 * image claimed, two -blockdev nodes per image), and with everything a real guest has (that
 * disk, a bridged NIC, vCPU and emulator pinning), alternated round by round; and the console's
 * round trip through the API (a command typed -> its output back), with the guest's shell.
 * On the sim host a bridged NIC runs as QEMU's user-mode network (docs/nics.md): the tap's own
 * cost on a real host (a few netlink calls and `ip tuntap`) is not in the figure.
 */
interface Result {
  plain: number[];
  withDisk: number[];
  full: number[];
  consoleRtt: number[];
}

async function measure(rounds: number): Promise<Result | string> {
  const guest = findGuest();
  const qemu = findQemu();
  if (typeof guest === 'string') return guest;
  if (typeof qemu === 'string') return qemu;
  const dir = await mkdtemp(join(tmpdir(), 'pt-bench-guest-'));
  await createSimHost(join(dir, 'host'), 'intel-x710-2port');
  const d = await startDaemon(dir);
  const r: Result = { plain: [], withDisk: [], full: [], consoleRtt: [] };
  try {
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', join(dir, 'base.qcow2'), '64M']);
    execFileSync('qemu-img', [
      'create',
      '-q',
      '-f',
      'qcow2',
      '-F',
      'qcow2',
      '-b',
      join(dir, 'base.qcow2'),
      join(dir, 'top.qcow2'),
    ]);
    const base = quickstartXml('0000:06:02.0', { kernel: guest.vmlinux, initrd: guest.initrd }, join(dir, 'c.log'));
    const disk = `<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${join(dir, 'top.qcow2')}'/><target dev='vda' bus='virtio'/></disk>`;
    const nic = "<interface type='bridge'><source bridge='br0'/><model type='virtio'/></interface>";
    const pins = "<cputune><vcpupin vcpu='0' cpuset='1'/><emulatorpin cpuset='0'/></cputune>";
    const variants = {
      plain: base,
      withDisk: base.replace('<devices>', `<devices>\n    ${disk}`),
      full: base.replace('<devices>', `<devices>\n    ${disk}\n    ${nic}`).replace('<os>', `${pins}\n  <os>`),
    } as const;
    for (let i = 0; i < rounds; i++) {
      for (const k of ['plain', 'withDisk', 'full'] as const) {
        await d.client.post('/domains', { xml: variants[k] });
        const t0 = performance.now();
        await d.client.post('/domains/quickstart/start');
        r[k].push(performance.now() - t0);
        await d.client.post('/domains/quickstart/destroy');
      }
    }
    // The console: a guest whose serial port passthrud holds.
    await d.client.post('/domains', {
      xml: base.replace(/<serial type='file'>[\s\S]*?<\/serial>/, "<serial type='pty'/>"),
    });
    await d.client.post('/domains/quickstart/start');
    const con = await d.client.upgrade('/domains/quickstart/console', 'passthru-console');
    let seen = '';
    con.on('data', (b: Buffer) => (seen += b.toString('utf8')));
    for (let i = 0; i < 600 && !seen.includes('passthru-guest# '); i++) {
      if (i % 20 === 0) con.write('\r');
      await sleep(100);
    }
    for (let i = 0; i < rounds; i++) {
      const mark = `rtt-${i}-${Date.now() % 1000}`;
      const from = seen.length;
      const t0 = performance.now();
      con.write(`echo ${mark.replace('-', '-""')}\r`);
      while (!seen.slice(from).includes(mark)) await sleep(1);
      r.consoleRtt.push(performance.now() - t0);
    }
    con.end();
    await d.client.post('/domains/quickstart/destroy');
  } finally {
    await d.stop();
    await rm(dir, { recursive: true, force: true });
  }
  return r;
}

let once: ReturnType<typeof measure> | undefined;

export default [
  {
    id: 'guest.start-vf',
    title: 'start API call: a domain holding a VF (TCG, sim host)',
    measure: async (ctx) => {
      const r = await (once ??= measure(ctx.rounds(5)));
      return typeof r === 'string' ? skipped(r) : samples('ms', r.plain);
    },
  },
  {
    id: 'guest.start-vf-qcow2',
    title: 'start API call: the same with a qcow2 disk on a backing file',
    measure: async (ctx) => {
      const r = await (once ??= measure(ctx.rounds(5)));
      return typeof r === 'string' ? skipped(r) : samples('ms', r.withDisk);
    },
  },
  {
    id: 'guest.start-vf-full',
    title:
      'start API call: the same with the qcow2 disk, a bridged NIC (user-mode on the sim) and vCPU/emulator pinning',
    measure: async (ctx) => {
      const r = await (once ??= measure(ctx.rounds(5)));
      return typeof r === 'string' ? skipped(r) : samples('ms', r.full);
    },
  },
  {
    id: 'guest.console-rtt',
    title: "console round trip through the API: a command typed -> its output back (guest's shell)",
    measure: async (ctx) => {
      const r = await (once ??= measure(ctx.rounds(5)));
      return typeof r === 'string' ? skipped(r) : samples('ms', r.consoleRtt);
    },
  },
] satisfies Figure[];
