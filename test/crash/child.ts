/**
 * The crash tier's victim: a device manager over a sim host, in a process of its own that
 * PASSTHRU_FAULT_CRASH_AT kills with SIGKILL at one journal write. argv: JSON of
 * { host, state, domain, op: 'prepare' | 'release', requests }. Exits 0 when the operation
 * finished (the kill point was not reached), 1 when it failed.
 */
import { openSimHost } from '../../src/host/sim/kernel.ts';
import { hostOps } from '../../src/hostdev/host-ops.ts';
import { HostdevManager } from '../../src/hostdev/manager.ts';
import type { HostdevRequest } from '../../src/hostdev/request.ts';
import { silentLogger } from '../../src/lib/logger.ts';

interface Job {
  readonly host: string;
  readonly state: string;
  readonly domain: string;
  readonly op: 'prepare' | 'release';
  readonly requests: HostdevRequest[];
}

const job = JSON.parse(process.argv[2] ?? '{}') as Job;
const manager = await HostdevManager.open(hostOps(await openSimHost(job.host)), job.state, silentLogger());
try {
  if (job.op === 'prepare') await manager.prepare(job.domain, job.requests);
  else await manager.release(job.domain);
  process.exit(0);
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exit(1);
}
