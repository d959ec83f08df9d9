import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseMac } from '../../src/conf/mac.ts';
import { parsePciAddress } from '../../src/conf/pci-address.ts';
import { singleTag } from '../../src/conf/vlan.ts';
import { createSimHost } from '../../src/host/sim/create.ts';
import { openSimHost } from '../../src/host/sim/kernel.ts';
import { hostOps } from '../../src/hostdev/host-ops.ts';
import { HostdevManager } from '../../src/hostdev/manager.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { hostView } from '../../src/network/members.ts';
import { Pools } from '../../src/network/pools.ts';
import { readInventory } from '../../src/host/inventory.ts';
import { startDaemon } from '../../test/helpers/daemon.ts';
import { cyclesPerSecond, type Figure, run, samples } from '../lib/figure.ts';

const ROOT = join(import.meta.dirname, '..', '..');

/** The daemon alone: what it holds in memory at scale, and how fast its device manager turns. */

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? Number.NaN) / 1024;
}

export default [
  {
    id: 'daemon.rss',
    title: 'daemon RSS: scale-16x256 host (4,096 VFs) and 200 defined domains',
    target: { max: 100, text: '<= 100 MB' },
    measure: async (ctx) => {
      const dir = await mkdtemp(join(tmpdir(), 'passthru-bench-'));
      try {
        await createSimHost(join(dir, 'host'), 'scale-16x256');
        // The installed daemon (tsc's dist/), not the source under tsx, whose compiler and
        // source maps live in the same heap.
        run('npx', ['tsc', '-p', 'tsconfig.build.json']);
        const d = await startDaemon(dir, {}, join(ROOT, 'dist', 'src', 'daemon', 'main.js'));
        try {
          for (let i = 0; i < 200; i++) {
            await d.client.post('/domains', {
              xml: `<domain type='kvm'><name>vm${i}</name><memory unit='MiB'>256</memory><os><type arch='x86_64' machine='q35'>hvm</type></os><devices><interface type='hostdev' managed='yes'><mac address='52:54:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}'/><source><address type='pci' domain='0x0000' bus='0x${(0x10 + (i % 16)).toString(16)}' slot='0x02' function='0x${i % 8}'/></source></interface></devices></domain>`,
            });
          }
          // The nodedev list walks the whole inventory; RSS after it, a few times a second apart.
          await d.client.get('/nodedevs');
          const pid = d.proc.pid ?? 0;
          const xs: number[] = [];
          for (let i = 0; i < ctx.rounds(5); i++) {
            await new Promise((r) => setTimeout(r, 300));
            xs.push(rssMb(pid));
          }
          ctx.note('VmRSS of passthrud (dist/, node) after 200 defines and a nodedev-list');
          return samples('MB', xs);
        } finally {
          await d.stop();
        }
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  },
  {
    id: 'pools.cycles',
    title: 'VF allocate+release cycles from a hostdev network (the pool state journaled, fsync)',
    target: { min: 500, text: '>= 500/s' },
    measure: async (ctx) => {
      const dir = await mkdtemp(join(tmpdir(), 'passthru-bench-'));
      try {
        await createSimHost(join(dir, 'host'), 'intel-x710-2port');
        const kernel = await openSimHost(join(dir, 'host'));
        const view = hostView(await readInventory(kernel.sysfs));
        const pools = await Pools.open(join(dir, 'state'), silentLogger());
        await pools.define(
          'network',
          "<network><name>vfs</name><forward mode='hostdev' managed='yes'><pf dev='enp6s0f0'/></forward></network>",
        );
        const net = { kind: 'network', name: 'vfs' } as const;
        await pools.start(net, view);
        const want = { ref: net, request: { numaNodes: new Set<number>() }, label: 'bench' };
        const rates = await cyclesPerSecond(ctx.rounds(5), async () => {
          await pools.allocate('bench', [want], view, () => undefined);
          await pools.release('bench');
        });
        ctx.note(
          'the network layer alone (src/network/pools.ts): choose a VF, write the pool state, give it back; 1 s windows',
        );
        return samples('cycles/s', rates, 'higher');
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  },
  {
    id: 'hostdev.cycles',
    title: 'VF prepare+release cycles through the device manager (journaled, fsync)',
    target: { min: 500, text: '>= 500/s' },
    measure: async (ctx) => {
      const dir = await mkdtemp(join(tmpdir(), 'passthru-bench-'));
      try {
        await createSimHost(join(dir, 'host'), 'intel-x710-2port');
        const kernel = await openSimHost(join(dir, 'host'));
        const m = await HostdevManager.open(hostOps(kernel), join(dir, 'state'), silentLogger());
        const request = {
          alias: 'hostdev0',
          address: parsePciAddress('0000:06:02.1'),
          managed: true,
          stub: 'vfio-pci',
          assigned: true,
          net: { mac: parseMac('52:54:00:aa:00:01'), vlan: singleTag(10) },
        } as const;
        const rates = await cyclesPerSecond(ctx.rounds(5), async () => {
          await m.prepare('bench', [request]);
          await m.release('bench');
        });
        ctx.note(
          'one VF with admin MAC and VLAN on the sim host: bind vfio-pci, program, release, restore; 1 s windows',
        );
        return samples('cycles/s', rates, 'higher');
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  },
] satisfies Figure[];
