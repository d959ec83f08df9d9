import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { quickstartXml } from '../src/cli/run/quickstart.ts';
import { findGuest, findQemu } from '../src/cli/local.ts';
import { createSimHost } from '../src/host/sim/create.ts';
import { startDaemon } from '../test/helpers/daemon.ts';

/**
 * Wall time from `start` (the API call) to the guest's console showing the MAC programmed on its
 * simulated VF, and of `destroy` (QEMU gone, VF restored). Real QEMU under TCG on this machine.
 */
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 5);
const guest = findGuest();
const qemu = findQemu();
if (typeof guest === 'string' || typeof qemu === 'string') {
  console.log(`skipped: ${typeof guest === 'string' ? guest : typeof qemu === 'string' ? qemu : ''}`);
  process.exit(0);
}
const dir = await mkdtemp(join(tmpdir(), 'passthru-bench-'));
await createSimHost(join(dir, 'host'), 'intel-x710-2port');
const d = await startDaemon(dir);
const toMac: number[] = [];
const destroy: number[] = [];
try {
  for (let i = 0; i < ROUNDS; i++) {
    const consoleLog = join(dir, `c${i}.log`);
    await d.client.post('/domains', {
      xml: quickstartXml('0000:06:02.0', { kernel: guest.vmlinux, initrd: guest.initrd }, consoleLog),
    });
    const t0 = performance.now();
    await d.client.post('/domains/quickstart/start');
    while (!(await readFile(consoleLog, 'utf8').catch(() => '')).includes('mac 52:54:00:00:00:01')) await sleep(20);
    toMac.push(performance.now() - t0);
    const t1 = performance.now();
    await d.client.post('/domains/quickstart/destroy');
    destroy.push(performance.now() - t1);
  }
} finally {
  await d.stop();
  await rm(dir, { recursive: true, force: true });
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
console.log(
  `start -> guest console shows the VF's MAC: median ${(median(toMac) / 1000).toFixed(2)} s over ${ROUNDS} (min ${(Math.min(...toMac) / 1000).toFixed(2)}, max ${(Math.max(...toMac) / 1000).toFixed(2)})`,
);
console.log(`destroy (QEMU gone, VF restored): median ${median(destroy).toFixed(0)} ms`);
