import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createSimHost } from '../../src/host/sim/create.ts';
import { startDaemon, type TestDaemon } from '../../test/helpers/daemon.ts';
import { type Figure, type Result, skipped } from '../lib/figure.ts';
import { type Peer, peerXml, startPeer, virshTimes } from '../lib/peer.ts';

/**
 * Live migration side by side with libvirt 9.0: the peer tool's two libvirtd instances (a, b,
 * each in its own mount namespace) and two passthrud on two sim hosts, all on this machine; the
 * same domain (peer1: q35, 256 MiB, one virtio NIC on user networking, no VF, TCG) goes a -> b
 * -> a ... on each side, the sides alternated round by round. The time is the migrate call of
 * the source's API (virsh -t in one connection; passthru's API client), request to the guest
 * running on the destination and gone from the source. The migration stream is QEMU to QEMU over
 * tcp://127.0.0.1 on both sides (libvirt forbids a loopback migration_host in qemu.conf, so it
 * is given per call, as the peer tool's measure.sh does).
 */
async function measure(rounds: number): Promise<{ libvirt: number[]; passthru: number[] } | string> {
  const peers: Peer[] = [];
  const daemons: TestDaemon[] = [];
  const dir = await mkdtemp(join(tmpdir(), 'passthru-bench-lvmig-'));
  try {
    for (const i of ['a', 'b'] as const) {
      const p = startPeer(i);
      if (typeof p === 'string') return p;
      peers.push(p);
      await createSimHost(join(dir, i, 'host'), 'intel-x710-2port');
      daemons.push(await startDaemon(join(dir, i)));
    }
    const [la, lb] = peers as [Peer, Peer];
    const [pa, pb] = daemons as [TestDaemon, TestDaemon];
    const xml = peerXml(dir);
    la.virsh(['define', xml]);
    la.virsh(['start', 'peer1']);
    await pa.client.post('/domains', { xml: await readFile(xml, 'utf8') });
    await pa.client.post('/domains/peer1/start');
    const out = { libvirt: [] as number[], passthru: [] as number[] };
    let port = 49152;
    // One untimed round trip each first (libvirt probes the destination QEMU's capabilities).
    for (let i = -1; i < rounds; i++) {
      for (const [lfrom, lto, pfrom, pto] of [
        [la, lb, pa, pb],
        [lb, la, pb, pa],
      ] as const) {
        const lv = virshTimes(
          lfrom.virsh([
            '-t',
            `migrate --live peer1 ${lto.uri} --migrateuri tcp://127.0.0.1:${port++} --listen-address 127.0.0.1`,
          ]),
        )[0];
        const t = performance.now();
        await pfrom.client.post('/domains/peer1/migrate', { dest: pto.client.target, live: true });
        const pt = performance.now() - t;
        if (i >= 0) {
          out.libvirt.push(lv ?? Number.NaN);
          out.passthru.push(pt);
        }
      }
    }
    la.virsh(['destroy', 'peer1']);
    await pa.client.post('/domains/peer1/destroy');
    return out;
  } finally {
    // The peer's state outlives this run: a peer1 left defined there would refuse the next
    // define (a new UUID under the same name), in this figure and in libvirt.ts.
    for (const p of peers) {
      for (const cmd of ['destroy', 'undefine']) {
        try {
          p.virsh([cmd, 'peer1']);
        } catch {
          // not there
        }
      }
    }
    for (const d of daemons) await d.stop();
    for (const p of peers) p.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

export default [
  {
    id: 'libvirt.migrate.api',
    title: 'live migration of a 256 MiB guest without VF, API (passthru vs libvirt 9.0)',
    measure: async (ctx): Promise<Result> => {
      const r = await measure(ctx.rounds(4));
      if (typeof r === 'string') return skipped(`libvirt side skipped: ${r}`);
      ctx.note('passthru/libvirt; a -> b and b -> a alternately, two daemons of each on this machine, TCG');
      return {
        kind: 'pairs',
        unit: 'ms',
        a: { label: 'libvirt', samples: r.libvirt },
        b: { label: 'passthru', samples: r.passthru },
      };
    },
  },
] satisfies Figure[];
