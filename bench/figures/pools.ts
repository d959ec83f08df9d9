import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findQemu } from '../../src/cli/local.ts';
import { readInventory } from '../../src/host/inventory.ts';
import { createSimHost } from '../../src/host/sim/create.ts';
import { openSimHost } from '../../src/host/sim/kernel.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { hostView } from '../../src/network/members.ts';
import { Pools } from '../../src/network/pools.ts';
import { haltedQemu } from '../../test/e2e/helpers/halted-qemu.ts';
import { startDaemon, type TestDaemon } from '../../test/helpers/daemon.ts';
import { cyclesPerSecond, type Figure, samples, skipped } from '../lib/figure.ts';

/**
 * Pools, journaled as in production (the pool's state file written with fsync on every change):
 * - on scale-16x256 (4096 VFs), a network taking every VF by selector: allocate + release in
 *   the pools alone (what the network room adds to a start), and through the daemon's API as
 *   network ports (net-port-create / net-port-delete, libvirt's virNetworkPort), with and without
 *   the device manager binding the port's VF (nodedev-detach / reattach);
 * - the race of issue 8: 200 concurrent starts for 200 guests on a network of 64 VFs, each
 *   guest a real QEMU that only halts.
 */
const NET = (forward: string) =>
  `<network><name>big</name><forward mode='hostdev' managed='yes'>${forward}</forward></network>`;

const domainXml = (name: string, emulator: string, i: number) => `<domain type='kvm'>
  <name>${name}</name><memory unit='MiB'>32</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <devices><emulator>${emulator}</emulator>
    <interface type='network'><mac address='52:54:00:20:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}'/><source network='big'/></interface>
  </devices></domain>`;

async function withDaemon<T>(profile: string, fn: (d: TestDaemon, dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'passthru-bench-pools-'));
  try {
    await createSimHost(join(dir, 'host'), profile);
    const d = await startDaemon(dir);
    try {
      return await fn(d, dir);
    } finally {
      await d.stop();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Cycles per second, one sample per round of `per` cycles. */
async function rate(rounds: number, per: number, cycle: () => Promise<void>): Promise<number[]> {
  await cycle();
  const out: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t = performance.now();
    for (let i = 0; i < per; i++) await cycle();
    out.push((per * 1000) / (performance.now() - t));
  }
  return out;
}

/** The pools alone: allocate + release for one domain, against the 4096-VF host's view. */
async function measurePools(rounds: number): Promise<number[]> {
  const dir = await mkdtemp(join(tmpdir(), 'passthru-bench-pools-'));
  try {
    await createSimHost(join(dir, 'host'), 'scale-16x256');
    const view = hostView(await readInventory((await openSimHost(join(dir, 'host'))).sysfs));
    const pools = await Pools.open(join(dir, 'state'), silentLogger());
    await pools.define('network', NET("<select vendor='8086' device='1889'/>"));
    const ref = { kind: 'network', name: 'big' } as const;
    await pools.start(ref, view);
    const want = { ref, request: { numaNodes: new Set<number>() }, label: 'bench' };
    return await rate(rounds, 20, async () => {
      await pools.allocate('d', [want], view, () => undefined);
      await pools.release('d');
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const PORT = (n: number) => {
  const id = n.toString(16).padStart(12, '0');
  return `<networkport><uuid>7a4c6b0e-3c53-4a0e-9f55-${id}</uuid>
  <owner><name>bench</name><uuid>7a4c6b0e-3c53-4a0e-9f55-000000000000</uuid></owner>
  <mac address='52:54:00:7a:00:01'/></networkport>`;
};

/**
 * Through the daemon's API, journaled: `net-port-create` (a VF chosen from the 4096, the
 * network's state file written with fsync) and `net-port-delete` (written again). `clients`
 * cycles run at once, as concurrent starts would: their state writes share one fsync (the pools
 * coalesce every change made while a write is under way into the next). With `prepare`, each
 * cycle also binds the port's VF to vfio-pci and back through the device manager
 * (`nodedev-detach` / `nodedev-reattach`, its journal fsynced), on the sim kernel.
 */
async function measurePortCycles(rounds: number, clients: number, prepare: boolean): Promise<number[]> {
  return withDaemon('scale-16x256', async (d) => {
    const c = d.client;
    await c.post('/networks', { xml: NET("<select vendor='8086' device='1889'/>") });
    await c.post('/networks/big/start');
    let next = 0;
    const cycle = async (): Promise<void> => {
      const n = next++;
      const p = await c.post<{ uuid: string; device: string }>('/networks/big/ports', { xml: PORT(n) });
      if (prepare) {
        await c.post(`/nodedevs/${p.device}/detach`, {});
        await c.post(`/nodedevs/${p.device}/reattach`);
      }
      await c.delete(`/networks/big/ports/${p.uuid}`);
    };
    const worker = async (): Promise<void> => {
      for (let i = 0; i < 10; i++) await cycle();
    };
    await Promise.all(Array.from({ length: clients }, worker));
    return cyclesPerSecond(rounds, async () => {
      await Promise.all(Array.from({ length: clients }, cycle));
    }).then((rates) => rates.map((r) => r * clients));
  });
}

async function measureRace(rounds: number): Promise<number[] | string> {
  const qemu = findQemu();
  if (typeof qemu === 'string') return qemu;
  return withDaemon('intel-x710-2port', async (d, dir) => {
    const c = d.client;
    await c.post('/nodedevs/enp6s0f0/sriov', { numVfs: 64 });
    await c.post('/networks', { xml: NET("<pf dev='enp6s0f0'/>") });
    await c.post('/networks/big/start');
    const emulator = await haltedQemu(dir, qemu.binary);
    const names = Array.from({ length: 200 }, (_, i) => `race${i}`);
    for (const [i, n] of names.entries()) await c.post('/domains', { xml: domainXml(n, emulator, i) });
    const out: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const t = performance.now();
      const results = await Promise.allSettled(names.map((n) => c.post(`/domains/${n}/start`)));
      out.push((performance.now() - t) / 1000);
      const ok = names.filter((_, i) => results[i]?.status === 'fulfilled');
      if (ok.length !== 64) throw new Error(`${ok.length} of 200 started on 64 VFs`);
      await Promise.all(ok.map((n) => c.post(`/domains/${n}/destroy`)));
    }
    return out;
  });
}

export default [
  {
    id: 'pools.allocate-release-4096',
    title: 'allocate + release in the pools (4096-VF network by selector, state file fsync each change)',
    measure: async (ctx) => {
      ctx.note('scale-16x256, <select vendor=8086 device=1889> = 4096 VFs; rounds of 20 cycles');
      return samples('cycles/s', await measurePools(ctx.rounds(5)), 'higher');
    },
  },
  {
    id: 'pools.port-cycles-4096',
    title:
      'net-port-create + net-port-delete through the API, 32 clients at once (4096-VF network, state file fsync, writes grouped)',
    target: { min: 500, text: '>= 500/s' },
    measure: async (ctx) => {
      ctx.note(
        'scale-16x256, a network of 4096 VFs by selector; each cycle: a VF chosen, the state written (fsync), given back (fsync); 1 s windows',
      );
      return samples('cycles/s', await measurePortCycles(ctx.rounds(5), 32, false), 'higher');
    },
  },
  {
    id: 'pools.port-cycles-4096-serial',
    title: 'net-port-create + net-port-delete through the API, one client (4096-VF network, state file fsync)',
    measure: async (ctx) => samples('cycles/s', await measurePortCycles(ctx.rounds(5), 1, false), 'higher'),
  },
  {
    id: 'pools.port-prepare-cycles-4096',
    title:
      'net-port-create + nodedev-detach + nodedev-reattach + net-port-delete through the API, 8 clients (pool and device-manager journals fsynced, sim kernel)',
    measure: async (ctx) => {
      ctx.note(
        'the device manager binds the VF to vfio-pci and back on the scale-16x256 sim (each sim kernel operation takes its lock and rewrites its state)',
      );
      return samples('cycles/s', await measurePortCycles(ctx.rounds(3), 8, true), 'higher');
    },
  },
  {
    id: 'pools.race-64-of-200',
    title: '200 concurrent starts on a 64-VF network until all answered (64 run, 136 none available)',
    measure: async (ctx) => {
      const r = await measureRace(ctx.rounds(1));
      return typeof r === 'string' ? skipped(r) : samples('s', r);
    },
  },
] satisfies Figure[];
