import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { findGuest, findQemu } from '../../src/cli/local.ts';
import { createSimHost } from '../../src/host/sim/create.ts';
import type { DeviceChange } from '../../src/protocol/wire.ts';
import { startDaemon } from '../../test/helpers/daemon.ts';
import { type Figure, median, samples, skipped } from '../lib/figure.ts';

/**
 * attach-device and detach-device through the API, with a running tiny Linux guest (TCG, sim
 * host): a VF (`<interface type='hostdev'>`), then a virtio NIC on QEMU's user-mode network,
 * which is what libvirt's figures on the same kind of machine attached (5.7 ms attach through
 * the API, 82.5 ms detach with a TCG guest acking). Attach: the API call (host prepared,
 * device_add answered). Detach: the API call, which answers once the guest has let go
 * (DEVICE_DELETED). The guest's console must show the NIC before each detach, so every detach is
 * one the guest acknowledges. The daemon's own phase timings (its debug log) split the VF's
 * figure into the host side (the sim kernel binding it to vfio-pci and back) and QEMU's.
 */
interface Measured {
  readonly attach: number[];
  readonly detach: number[];
  readonly nicAttach: number[];
  readonly nicDetach: number[];
  /** The host side of each VF attach and detach (device manager prepare / release), ms. */
  readonly prepare: number[];
  readonly release: number[];
}

async function measure(rounds: number): Promise<Measured | string> {
  const guest = findGuest();
  const qemu = findQemu();
  if (typeof guest === 'string') return guest;
  if (typeof qemu === 'string') return qemu;
  const dir = await mkdtemp(join(tmpdir(), 'pt-bench-hp-'));
  await createSimHost(join(dir, 'host'), 'intel-x710-2port');
  const d = await startDaemon(dir, {}, undefined, ['--log-level', 'debug']);
  const m: Measured = { attach: [], detach: [], nicAttach: [], nicDetach: [], prepare: [], release: [] };
  const consoleLog = join(dir, 'console.log');
  try {
    await d.client.post('/domains', {
      xml: `<domain type='kvm'><name>hp</name><memory unit='MiB'>256</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type><kernel>${guest.vmlinux}</kernel><initrd>${guest.initrd}</initrd>
  <cmdline>console=ttyS0 quiet panic=-1</cmdline></os>
  <devices><serial type='file'><source path='${consoleLog}'/><target port='0'/></serial></devices></domain>`,
    });
    await d.client.post('/domains/hp/start');
    while (!(await readFile(consoleLog, 'utf8').catch(() => '')).includes('passthru-guest: scan')) await sleep(50);
    const cycle = async (xml: string, mac: string, attach: number[], detach: number[]): Promise<void> => {
      const t0 = performance.now();
      await d.client.post('/domains/hp/devices', { xml });
      attach.push(performance.now() - t0);
      while (!(await readFile(consoleLog, 'utf8')).includes(`mac ${mac}`)) await sleep(50);
      const t1 = performance.now();
      const r = await d.client.post<DeviceChange>('/domains/hp/devices/detach', { xml, timeoutMs: 60_000 });
      if (r.state !== 'detached') throw new Error(r.message);
      detach.push(performance.now() - t1);
    };
    for (let i = 0; i < rounds; i++) {
      const mac = `52:54:00:00:0c:${(i + 16).toString(16)}`;
      const vf = `<interface type='hostdev' managed='yes'><mac address='${mac}'/>
  <source><address type='pci' domain='0x0000' bus='0x06' slot='0x02' function='0x1'/></source></interface>`;
      await cycle(vf, mac, m.attach, m.detach);
    }
    for (let i = 0; i < rounds; i++) {
      const mac = `52:54:00:00:0d:${(i + 16).toString(16)}`;
      const nic = `<interface type='user'><mac address='${mac}'/><model type='virtio'/></interface>`;
      await cycle(nic, mac, m.nicAttach, m.nicDetach);
    }
    await d.client.post('/domains/hp/destroy');
  } finally {
    await d.stop();
    const log = await readFile(join(dir, 'passthrud.log'), 'utf8');
    await rm(dir, { recursive: true, force: true });
    for (const line of log.split('\n')) phaseTimes(line, m);
  }
  return m;
}

/** The device manager's share of a VF hot-plug, from the daemon's "hot-(un)plug timings" lines. */
function phaseTimes(line: string, m: Measured): void {
  if (!line.includes('plug timings')) return;
  const ms = (JSON.parse(line) as { ms?: Record<string, number> }).ms ?? {};
  if (ms['prepare'] !== undefined) m.prepare.push(ms['prepare']);
  if (ms['release'] !== undefined) m.release.push(ms['release']);
}

let once: ReturnType<typeof measure> | undefined;

/** A figure of the shared run: `pick` chooses its samples, `host` the device manager's share. */
function figure(id: string, title: string, pick: (m: Measured) => number[], host?: (m: Measured) => number[]): Figure {
  return {
    id,
    title,
    measure: async (ctx) => {
      const r = await (once ??= measure(ctx.rounds(7)));
      if (typeof r === 'string') return skipped(r);
      const share = host?.(r);
      if (share !== undefined && share.length > 0) {
        ctx.note(`of which the device manager on the sim kernel: ${median(share).toFixed(0)} ms (median)`);
      }
      return samples('ms', pick(r));
    },
  };
}

export default [
  figure(
    'hotplug.attach',
    'attach-device of a VF to a running guest, through the API (libvirt: 5.7 ms, a virtio NIC)',
    (m) => m.attach,
    (m) => m.prepare,
  ),
  figure(
    'hotplug.detach',
    'detach-device of a VF, answered when the guest has let go (libvirt: 82.5 ms, a virtio NIC)',
    (m) => m.detach,
    (m) => m.release,
  ),
  figure(
    'hotplug.attach-nic',
    'attach-device of a user-mode virtio NIC, through the API (libvirt: 5.7 ms)',
    (m) => m.nicAttach,
  ),
  figure(
    'hotplug.detach-nic',
    'detach-device of a user-mode virtio NIC, answered when the guest has let go (libvirt: 82.5 ms)',
    (m) => m.nicDetach,
  ),
] satisfies Figure[];
