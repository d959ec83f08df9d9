import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findGuest, findQemu } from '../../src/cli/local.ts';
import { parseMac } from '../../src/conf/mac.ts';
import { createSimHost } from '../../src/host/sim/create.ts';
import type { MigrationReport } from '../../src/protocol/wire.ts';
import { prepareLiveDef } from '../../src/qemu/live-def.ts';
import { migrate } from '../../src/qemu/migration.ts';
import { startDaemon, type TestDaemon } from '../../test/helpers/daemon.ts';
import { type GuestNic, waitForGuestNic } from '../../test/e2e/helpers/console.ts';
import { failoverPair, guestDomain, startGuest } from '../../test/e2e/helpers/guest-domain.ts';
import {
  consoleOf,
  enslavedVf,
  guestDomainXml,
  migratingGuestXml,
  waitRound,
} from '../../test/e2e/helpers/migration.ts';
import { type Figure, samples, skipped } from '../lib/figure.ts';

/**
 * A failover migration of a 256 MiB guest (TCG, sim hosts): passthru between two daemons on
 * this machine (the guest goes A -> B -> A ..., each time once its VF is enslaved again), and
 * raw QEMU doing the same migration by QMP alone. libvirt's live migration of a 256 MiB idle
 * guest without any VF took 630 ms (median, the peer measurements), for comparison.
 */
const MAC = '52:54:00:fb:00:01';

interface PassthruRun {
  total: number[];
  downtime: number[];
  vfLess: number[];
  /** --unplug-hostdevs: unplug on the source -> device_add done on the destination. */
  gap: number[];
}

/** A hostdev network of one VF (each host's own), for the unplug/replug runs. */
const NETWORK = `<network><name>vfs</name><forward mode='hostdev' managed='yes'>
  <address type='pci' domain='0x0000' bus='0x06' slot='0x02' function='0x5'/></forward></network>`;

/** `failover`: a VF with a virtio standby (QEMU unplugs it); `unplug`: a network's VF without
 *  one, moved by migrate --unplug-hostdevs (the guest is without it for the gap); `hybrid`: an
 *  `<interface type='hostdev-hybrid'>`, the same failover pair from one element (docs/nics.md). */
async function passthruRuns(rounds: number, mode: 'failover' | 'unplug' | 'hybrid'): Promise<PassthruRun | string> {
  const guest = findGuest();
  const qemu = findQemu();
  if (typeof guest === 'string') return guest;
  if (typeof qemu === 'string') return qemu;
  const dir = await mkdtemp(join(tmpdir(), 'pt-bench-mig-'));
  const daemons: TestDaemon[] = [];
  const out: PassthruRun = { total: [], downtime: [], vfLess: [], gap: [] };
  try {
    for (const h of ['a', 'b']) {
      await createSimHost(join(dir, h, 'host'), 'intel-x710-2port');
      const d = await startDaemon(join(dir, h));
      daemons.push(d);
      if (mode === 'unplug') {
        await d.client.post('/networks', { xml: NETWORK });
        await d.client.post('/networks/vfs/start');
      }
    }
    const [a, b] = daemons as [TestDaemon, TestDaemon];
    const g = {
      qemu: qemu.binary,
      kernel: guest.vmlinux,
      initrd: guest.initrd,
      append: guest.append,
      kernelVersion: '',
    };
    const o = mode === 'failover' ? { mac: MAC, vf: 1 } : { mac: MAC, network: 'vfs', failover: false };
    const xml = mode === 'hybrid' ? guestDomainXml('bench-mig', g, HYBRID) : migratingGuestXml('bench-mig', g, o);
    await a.client.post('/domains', { xml });
    const ready =
      mode === 'unplug' ? (r: GuestNic[]) => r.some((n) => n.mac === MAC && n.driver === 'e1000e') : enslavedVf(MAC);
    await a.client.post('/domains/bench-mig/start');
    let [from, to] = [a, b];
    const state = (d: TestDaemon): string => join(dir, d === a ? 'a' : 'b', 'state');
    await waitRound(consoleOf(state(from), 'bench-mig'), ready, 150_000, 'VF ready');
    for (let i = 0; i < rounds; i++) {
      const r = await from.client.post<MigrationReport>('/domains/bench-mig/migrate', {
        dest: to.client.target,
        live: true,
        ...(mode === 'unplug' ? { unplugHostdevs: true } : {}),
      });
      if (r.unplugGapMs !== undefined) out.gap.push(r.unplugGapMs);
      out.total.push(r.totalMs);
      if (r.downtimeMs !== undefined) out.downtime.push(r.downtimeMs);
      if (r.vfLessMs !== undefined) out.vfLess.push(r.vfLessMs);
      [from, to] = [to, from];
      // The next migration starts once the guest has its VF again (a fresh console per host run).
      await waitRound(consoleOf(state(from), 'bench-mig'), ready, 150_000, 'VF ready');
    }
    await from.client.post('/domains/bench-mig/destroy');
  } finally {
    for (const d of daemons) await d.stop();
    await rm(dir, { recursive: true, force: true });
  }
  return out;
}

const HYBRID = `<interface type='hostdev-hybrid' managed='yes'><mac address='${MAC}'/>
  <source><address type='pci' domain='0x0000' bus='0x06' slot='0x02' function='0x1'/></source></interface>`;

/** Raw QEMU: two QEMUs with the same failover pair, QMP only (no devices prepared, no daemon). */
async function rawRuns(rounds: number): Promise<number[] | string> {
  const guest = findGuest();
  const qemu = findQemu();
  if (typeof guest === 'string') return guest;
  if (typeof qemu === 'string') return qemu;
  const dir = await mkdtemp(join(tmpdir(), 'pt-bench-raw-'));
  const mac = parseMac(MAC);
  const live = prepareLiveDef(guestDomain('bench-raw', guest, { interfaces: failoverPair(mac) }));
  const hostDevices = new Map([['hostdev0', { kind: 'emulated-nic', model: 'e1000e', mac } as const]]);
  const times: number[] = [];
  const start = (prefix: string, incoming: boolean) =>
    startGuest({ qemu: qemu.binary, dir, live, hostDevices, name: `QEMU ${prefix}`, prefix, incoming });
  let src = await start('r0', false);
  try {
    await src.vm.qmp.execute('cont');
    await waitForGuestNic(src.paths.consoleLog, (n) => n.driver === 'e1000e' && n.master !== '-', 150_000);
    for (let i = 1; i <= rounds; i++) {
      const dst = await start(`r${i}`, true);
      const t0 = performance.now();
      await migrate(src.vm.qmp, dst.vm.qmp, { listen: 'tcp:127.0.0.1:0' });
      await dst.vm.qmp.execute('cont');
      times.push(performance.now() - t0);
      await src.vm.qmp.execute('quit').catch(() => undefined);
      await src.vm.waitExit(10_000).catch(() => src.vm.destroy(2_000));
      src = dst;
      await waitForGuestNic(src.paths.consoleLog, (n) => n.driver === 'e1000e' && n.master !== '-', 150_000);
    }
  } finally {
    await src.vm.destroy(2_000).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
  return times;
}

let once: ReturnType<typeof passthruRuns> | undefined;
let onceUnplug: ReturnType<typeof passthruRuns> | undefined;
let onceHybrid: ReturnType<typeof passthruRuns> | undefined;
/** One figure of the hostdev-hybrid runs (one set of migrations serves all three). */
function hybridFigure(key: 'total' | 'downtime' | 'vfLess', title: string): Figure {
  return {
    id: `migration.hybrid.${key === 'vfLess' ? 'vf-less' : key}`,
    title,
    measure: async (ctx) => {
      const r = await (onceHybrid ??= passthruRuns(ctx.rounds(4), 'hybrid'));
      return typeof r === 'string' ? skipped(r) : samples('ms', r[key]);
    },
  };
}

const LIBVIRT = 'libvirt: 630 ms for a 256 MiB guest without VF (peer measurements)';

export default [
  {
    id: 'migration.failover.total',
    title: 'failover migration of a 256 MiB guest between two daemons: request -> source released',
    measure: async (ctx) => {
      const r = await (once ??= passthruRuns(ctx.rounds(4), 'failover'));
      ctx.note(LIBVIRT);
      return typeof r === 'string' ? skipped(r) : samples('ms', r.total);
    },
  },
  {
    id: 'migration.failover.downtime',
    title: "failover migration: QEMU's downtime (guest paused)",
    measure: async (ctx) => {
      const r = await (once ??= passthruRuns(ctx.rounds(4), 'failover'));
      return typeof r === 'string' ? skipped(r) : samples('ms', r.downtime);
    },
  },
  {
    id: 'migration.failover.vf-less',
    title: 'failover migration: VF-less window (UNPLUG_PRIMARY on the source -> primary plugged on the destination)',
    measure: async (ctx) => {
      const r = await (once ??= passthruRuns(ctx.rounds(4), 'failover'));
      return typeof r === 'string' ? skipped(r) : samples('ms', r.vfLess);
    },
  },
  {
    id: 'migration.raw-qemu.total',
    title: 'the same failover migration by raw QEMU (QMP migrate -> destination running)',
    measure: async (ctx) => {
      const r = await rawRuns(ctx.rounds(4));
      ctx.note(LIBVIRT);
      return typeof r === 'string' ? skipped(r) : samples('ms', r);
    },
  },
  {
    id: 'migration.unplug.gap',
    title: 'migrate --unplug-hostdevs of a 256 MiB guest: unplug on the source -> VF plugged on the destination',
    measure: async (ctx) => {
      const r = await (onceUnplug ??= passthruRuns(ctx.rounds(4), 'unplug'));
      return typeof r === 'string' ? skipped(r) : samples('ms', r.gap);
    },
  },
  {
    id: 'migration.unplug.total',
    title: 'migrate --unplug-hostdevs: request -> source released (the destination plugged the VF first)',
    measure: async (ctx) => {
      const r = await (onceUnplug ??= passthruRuns(ctx.rounds(4), 'unplug'));
      return typeof r === 'string' ? skipped(r) : samples('ms', r.total);
    },
  },
  hybridFigure(
    'total',
    'hostdev-hybrid migration of a 256 MiB guest (VF + virtio standby, one MAC): request -> source released',
  ),
  hybridFigure('downtime', "hostdev-hybrid migration: QEMU's downtime (guest paused)"),
  hybridFigure('vfLess', 'hostdev-hybrid migration: VF-less window (the guest on its standby)'),
] satisfies Figure[];
