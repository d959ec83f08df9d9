import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSimHost } from '../../src/host/sim/kernel.ts';
import { hostOps } from '../../src/hostdev/host-ops.ts';
import { HostdevManager } from '../../src/hostdev/manager.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { createRichHost, DOMAIN, richRequests } from '../../test/crash/rich.ts';
import { type Figure, samples } from '../lib/figure.ts';

/**
 * The device manager on the sim, with the crash tier's rich domain (VFs with every attribute, a
 * dual-port VF, an 802.1Qbh VF, a four-function card with one function unassigned): the time
 * of one prepare and of one release, every journal write fsynced on the state disk.
 */
async function rich(ctx: Parameters<Figure['measure']>[0], which: 'prepare' | 'release'): Promise<number[]> {
  const dir = await mkdtemp(join(tmpdir(), 'passthru-bench-'));
  try {
    await createRichHost(join(dir, 'host'));
    const m = await HostdevManager.open(
      hostOps(await openSimHost(join(dir, 'host'))),
      join(dir, 'state'),
      silentLogger(),
    );
    const xs: number[] = [];
    for (let i = 0; i < ctx.rounds(9) + 1; i++) {
      let t = performance.now();
      await m.prepare(DOMAIN, richRequests());
      const prepare = performance.now() - t;
      t = performance.now();
      await m.release(DOMAIN);
      const release = performance.now() - t;
      if (i > 0) xs.push(which === 'prepare' ? prepare : release); // the first round warms up
    }
    ctx.note(`${richRequests().length} devices; sim host and state under ${tmpdir()}`);
    return xs;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export default [
  {
    id: 'hostdev.prepare-rich',
    title: 'prepare of the rich domain (9 devices) on the sim',
    measure: async (ctx) => samples('ms', await rich(ctx, 'prepare')),
  },
  {
    id: 'hostdev.release-rich',
    title: 'release of the rich domain (9 devices) on the sim',
    measure: async (ctx) => samples('ms', await rich(ctx, 'release')),
  },
] satisfies Figure[];
