import { readFile } from 'node:fs/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findQemu } from '../../src/cli/local.ts';
import { createSimHost } from '../../src/host/sim/create.ts';
import { launchQemu } from '../../src/qemu/process.ts';
import { startDaemon } from '../../test/helpers/daemon.ts';
import { alternate, type Figure, skipped } from '../lib/figure.ts';
import { peerXml } from '../lib/peer.ts';

/**
 * passthru's start against its limit: QEMU itself, spawned bare with the same machine (q35,
 * 256 MiB, one virtio NIC, TCG, -S), its QMP handshake and `cont`, nothing else. The gap is what
 * the daemon adds (definition, state files, events). Alternated in one run.
 */
export default [
  {
    id: 'qemu.start-vs-bare',
    title: 'start -> running through passthrud, against bare QEMU spawn -> QMP -> cont',
    measure: async (ctx) => {
      const qemu = findQemu();
      if (typeof qemu === 'string') return skipped(qemu);
      const dir = await mkdtemp(join(tmpdir(), 'passthru-bench-'));
      try {
        await createSimHost(join(dir, 'host'), 'intel-x710-2port');
        const d = await startDaemon(dir);
        try {
          await d.client.post('/domains', { xml: await readFile(peerXml(dir), 'utf8') });
          let running: { destroy(graceMs?: number): Promise<unknown> } | undefined;
          const bare = async (): Promise<void> => {
            const p = await launchQemu({
              binary: qemu.binary,
              argv: [
                '-S',
                '-machine',
                'q35,accel=tcg',
                '-m',
                '256',
                '-smp',
                '1',
                '-nodefaults',
                '-no-user-config',
                '-display',
                'none',
                '-netdev',
                'user,id=n0',
                '-device',
                'virtio-net-pci,netdev=n0,romfile=',
                '-qmp',
                `unix:${join(dir, 'bare.qmp')},server=on,wait=off`,
                '-pidfile',
                join(dir, 'bare.pid'),
              ],
              pidfile: join(dir, 'bare.pid'),
              logFile: join(dir, 'bare.log'),
              qmpSocket: join(dir, 'bare.qmp'),
            });
            running = p;
            await p.qmp.execute('cont');
          };
          const r = await alternate(
            ctx.rounds(9),
            { label: 'bare QEMU', run: bare, after: () => running?.destroy(2000) },
            {
              label: 'passthru start',
              run: () => d.client.post('/domains/peer1/start'),
              after: () => d.client.post('/domains/peer1/destroy'),
            },
          );
          ctx.note('ratio passthru/bare; the same XML as the libvirt rows');
          return r;
        } finally {
          await d.stop();
        }
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  },
] satisfies Figure[];
