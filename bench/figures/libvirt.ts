import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createSimHost } from '../../src/host/sim/create.ts';
import { startDaemon } from '../../test/helpers/daemon.ts';
import { type Figure, type Result, run, skipped } from '../lib/figure.ts';
import { peerXml, startPeer, virshTimes } from '../lib/peer.ts';

/**
 * passthru side by side with libvirt 9.0 (Debian's, bench/libvirt-peer) on this machine, the same
 * domain XML on both (q35, 256 MiB, one virtio NIC, TCG), alternated in one run: each round does
 * libvirt's operation, then passthru's. "api" is the daemon's own time (virsh -t in one
 * connection; passthru's API client in this process); "typed" is a fresh command per step, as a
 * user types it (virsh; the installed passthru, the bundle in dist/cli).
 */
const ROOT = join(import.meta.dirname, '..', '..');
type Op =
  | 'defineStartApi'
  | 'destroyApi'
  | 'undefineApi'
  | 'defineStartTyped'
  | 'destroyTyped'
  | 'undefineTyped'
  | 'nodedevListTyped'
  | 'nodedevListApi';
type Sides = Record<Op, { libvirt: number[]; passthru: number[] }>;

function wall(fn: () => unknown): number {
  const t = performance.now();
  fn();
  return performance.now() - t;
}

async function measure(rounds: number): Promise<Sides | string> {
  const peer = startPeer();
  if (typeof peer === 'string') return peer;
  const dir = await mkdtemp(join(tmpdir(), 'passthru-bench-'));
  const sides = Object.fromEntries(
    (
      [
        'defineStartApi',
        'destroyApi',
        'undefineApi',
        'defineStartTyped',
        'destroyTyped',
        'undefineTyped',
        'nodedevListTyped',
        'nodedevListApi',
      ] as const
    ).map((k) => [k, { libvirt: [] as number[], passthru: [] as number[] }]),
  ) as Sides;
  try {
    run('npm', ['run', '--silent', 'build:cli']);
    await createSimHost(join(dir, 'host'), 'intel-x710-2port');
    const d = await startDaemon(dir);
    const xml = peerXml(dir);
    const xmlText = run('cat', [xml]);
    const cli = (...args: string[]): string =>
      run(process.execPath, [join(ROOT, 'dist', 'cli', 'passthru.js'), '-c', d.client.target, ...args]);
    const c = d.client;
    const timed = async (fn: () => Promise<unknown>): Promise<number> => {
      const t = performance.now();
      await fn();
      return performance.now() - t;
    };
    try {
      // One untimed round each: libvirt probes QEMU's capabilities on its first start.
      peer.virsh(['define', xml]);
      peer.virsh(['start', 'peer1']);
      peer.virsh(['destroy', 'peer1']);
      peer.virsh(['undefine', 'peer1']);
      for (let i = 0; i < rounds; i++) {
        const [def = 0, start = 0, destroy = 0, undefine = 0] = virshTimes(
          peer.virsh(['-t', `define ${xml}; start peer1; destroy peer1; undefine peer1`]),
        );
        sides.defineStartApi.libvirt.push(def + start);
        sides.destroyApi.libvirt.push(destroy);
        sides.undefineApi.libvirt.push(undefine);
        sides.defineStartApi.passthru.push(
          (await timed(() => c.post('/domains', { xml: xmlText }))) +
            (await timed(() => c.post('/domains/peer1/start'))),
        );
        sides.destroyApi.passthru.push(await timed(() => c.post('/domains/peer1/destroy')));
        sides.undefineApi.passthru.push(await timed(() => c.delete('/domains/peer1')));

        sides.defineStartTyped.libvirt.push(
          wall(() => peer.virsh(['define', xml])) + wall(() => peer.virsh(['start', 'peer1'])),
        );
        sides.defineStartTyped.passthru.push(wall(() => cli('define', xml)) + wall(() => cli('start', 'peer1')));
        sides.destroyTyped.libvirt.push(wall(() => peer.virsh(['destroy', 'peer1'])));
        sides.destroyTyped.passthru.push(wall(() => cli('destroy', 'peer1')));
        sides.undefineTyped.libvirt.push(wall(() => peer.virsh(['undefine', 'peer1'])));
        sides.undefineTyped.passthru.push(wall(() => cli('undefine', 'peer1')));

        sides.nodedevListTyped.libvirt.push(wall(() => peer.virsh(['nodedev-list'])));
        sides.nodedevListTyped.passthru.push(wall(() => cli('nodedev-list')));
        sides.nodedevListApi.libvirt.push(virshTimes(peer.virsh(['-t', 'nodedev-list']))[0] ?? Number.NaN);
        sides.nodedevListApi.passthru.push(await timed(() => c.get('/nodedevs')));
      }
    } finally {
      await d.stop();
    }
  } finally {
    peer.stop();
    await rm(dir, { recursive: true, force: true });
  }
  return sides;
}

let once: ReturnType<typeof measure> | undefined;

function figure(op: Op, id: string, title: string): Figure {
  return {
    id: `libvirt.${id}`,
    title,
    measure: async (ctx): Promise<Result> => {
      const r = await (once ??= measure(ctx.rounds(7)));
      if (typeof r === 'string') return skipped(`libvirt side skipped: ${r}`);
      ctx.note("passthru/libvirt; the sim host has 20 PCI functions, libvirt lists this VM's own devices");
      return {
        kind: 'pairs',
        unit: 'ms',
        a: { label: 'libvirt', samples: r[op].libvirt },
        b: { label: 'passthru', samples: r[op].passthru },
      };
    },
  };
}

export default [
  figure('defineStartApi', 'define-start.api', 'define+start -> running, API (passthru vs libvirt 9.0)'),
  figure('defineStartTyped', 'define-start.typed', 'define+start -> running, as typed (passthru vs libvirt 9.0)'),
  figure('destroyApi', 'destroy.api', 'destroy, API (passthru vs libvirt 9.0)'),
  figure('destroyTyped', 'destroy.typed', 'destroy, as typed (passthru vs libvirt 9.0)'),
  figure('undefineApi', 'undefine.api', 'undefine, API (passthru vs libvirt 9.0)'),
  figure('undefineTyped', 'undefine.typed', 'undefine, as typed (passthru vs libvirt 9.0)'),
  figure('nodedevListApi', 'nodedev-list.api', 'nodedev-list, API (passthru vs libvirt 9.0)'),
  figure('nodedevListTyped', 'nodedev-list.typed', 'nodedev-list, as typed (passthru vs libvirt 9.0)'),
] satisfies Figure[];
