import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { findGuest, findQemu } from '../../src/cli/local.ts';
import { quickstartXml } from '../../src/cli/run/quickstart.ts';
import { createSimHost } from '../../src/host/sim/create.ts';
import { startDaemon } from '../../test/helpers/daemon.ts';
import { type Figure, samples, skipped } from '../lib/figure.ts';

/**
 * A guest holding a VF, end to end on this machine (real QEMU under TCG, sim host): from the
 * `start` API call to the guest's console showing the MAC programmed on its VF, and `destroy`
 * (QEMU gone, VF restored).
 */
async function measure(rounds: number): Promise<{ toMac: number[]; destroy: number[] } | string> {
  const guest = findGuest();
  const qemu = findQemu();
  if (typeof guest === 'string') return guest;
  if (typeof qemu === 'string') return qemu;
  const dir = await mkdtemp(join(tmpdir(), 'passthru-bench-'));
  await createSimHost(join(dir, 'host'), 'intel-x710-2port');
  const d = await startDaemon(dir);
  const toMac: number[] = [];
  const destroy: number[] = [];
  try {
    for (let i = 0; i < rounds; i++) {
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
  return { toMac, destroy };
}

let once: ReturnType<typeof measure> | undefined;

export default [
  {
    id: 'guest.start-to-mac',
    title: "start -> the guest's console shows its VF's MAC (TCG, sim host)",
    measure: async (ctx) => {
      const r = await (once ??= measure(ctx.rounds(5)));
      return typeof r === 'string' ? skipped(r) : samples('ms', r.toMac);
    },
  },
  {
    id: 'guest.destroy',
    title: 'destroy a guest holding a VF (QEMU gone, VF restored)',
    measure: async (ctx) => {
      const r = await (once ??= measure(ctx.rounds(5)));
      return typeof r === 'string' ? skipped(r) : samples('ms', r.destroy);
    },
  },
] satisfies Figure[];
