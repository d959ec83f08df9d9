import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findGuest, findQemu } from '../src/cli/local.ts';
import { quickstartXml } from '../src/cli/run/quickstart.ts';
import { createSimHost } from '../src/host/sim/create.ts';
import { startDaemon } from '../test/helpers/daemon.ts';

/**
 * What the service paths cost (issue 12): the wall time of the `start` and `destroy` API calls
 * (reply received; real QEMU under TCG, sim host) and of a small read, which every request
 * pays for the socket, the schema check and the access check. Run it on two commits to compare.
 */
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 7);
const READS = 500;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const guest = findGuest();
const qemu = findQemu();
const dir = await mkdtemp(join(tmpdir(), 'passthru-bench-service-'));
await createSimHost(join(dir, 'host'), 'intel-x710-2port');
const d = await startDaemon(dir);
try {
  const reads: number[] = [];
  for (let i = 0; i < READS; i++) {
    const t = performance.now();
    await d.client.get('/domains');
    reads.push(performance.now() - t);
  }
  const refused: number[] = [];
  for (let i = 0; i < READS; i++) {
    const t = performance.now();
    await d.client.post('/domains', { xml: 123 }).catch(() => undefined);
    refused.push(performance.now() - t);
  }
  console.log(`GET /domains: median ${(median(reads) * 1000).toFixed(0)} µs over ${READS}`);
  console.log(`POST /domains {"xml":123} refused: median ${(median(refused) * 1000).toFixed(0)} µs over ${READS}`);
  if (typeof guest === 'string' || typeof qemu === 'string') {
    console.log(`start: skipped (${typeof guest === 'string' ? guest : typeof qemu === 'string' ? qemu : ''})`);
  } else {
    const start: number[] = [];
    const destroy: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      await d.client.post('/domains', {
        xml: quickstartXml('0000:06:02.0', { kernel: guest.vmlinux, initrd: guest.initrd }, join(dir, `c${i}.log`)),
      });
      const t0 = performance.now();
      await d.client.post('/domains/quickstart/start');
      start.push(performance.now() - t0);
      const t1 = performance.now();
      await d.client.post('/domains/quickstart/destroy');
      destroy.push(performance.now() - t1);
    }
    console.log(
      `start (API reply): median ${median(start).toFixed(0)} ms over ${ROUNDS} (min ${Math.min(...start).toFixed(0)}, max ${Math.max(...start).toFixed(0)})`,
    );
    console.log(`destroy (API reply): median ${median(destroy).toFixed(0)} ms over ${ROUNDS}`);
  }
} finally {
  await d.stop();
  await rm(dir, { recursive: true, force: true });
}
