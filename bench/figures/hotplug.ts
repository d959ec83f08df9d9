import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { findGuest, findQemu } from '../../src/cli/local.ts';
import type { DeviceChange } from '../../src/protocol/wire.ts';
import { createSimHost } from '../../src/host/sim/create.ts';
import { startDaemon } from '../../test/helpers/daemon.ts';
import { type Figure, samples, skipped } from '../lib/figure.ts';

/**
 * attach-device and detach-device of a VF through the API, with a running tiny Linux guest (TCG,
 * sim host). Attach: the API call (host prepared, device_add answered). Detach: the API call,
 * which answers once the guest has let go (DEVICE_DELETED). The guest's console must show the
 * NIC before each detach, so every detach is one the guest acknowledges. libvirt's figures on
 * the same kind of machine: 5.7 ms attach (API), 82.5 ms detach (TCG guest acks).
 */
async function measure(rounds: number): Promise<{ attach: number[]; detach: number[] } | string> {
  const guest = findGuest();
  const qemu = findQemu();
  if (typeof guest === 'string') return guest;
  if (typeof qemu === 'string') return qemu;
  const dir = await mkdtemp(join(tmpdir(), 'pt-bench-hp-'));
  await createSimHost(join(dir, 'host'), 'intel-x710-2port');
  const d = await startDaemon(dir);
  const attach: number[] = [];
  const detach: number[] = [];
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
    for (let i = 0; i < rounds; i++) {
      const mac = `52:54:00:00:0c:${(i + 16).toString(16)}`;
      const xml = `<interface type='hostdev' managed='yes'><mac address='${mac}'/>
  <source><address type='pci' domain='0x0000' bus='0x06' slot='0x02' function='0x1'/></source></interface>`;
      const t0 = performance.now();
      await d.client.post('/domains/hp/devices', { xml });
      attach.push(performance.now() - t0);
      while (!(await readFile(consoleLog, 'utf8')).includes(`mac ${mac}`)) await sleep(50);
      const t1 = performance.now();
      const r = await d.client.post<DeviceChange>('/domains/hp/devices/detach', { xml, timeoutMs: 60_000 });
      if (r.state !== 'detached') throw new Error(r.message);
      detach.push(performance.now() - t1);
    }
    await d.client.post('/domains/hp/destroy');
  } finally {
    await d.stop();
    await rm(dir, { recursive: true, force: true });
  }
  return { attach, detach };
}

let once: ReturnType<typeof measure> | undefined;

export default [
  {
    id: 'hotplug.attach',
    title: 'attach-device of a VF to a running guest, through the API (libvirt: 5.7 ms)',
    measure: async (ctx) => {
      const r = await (once ??= measure(ctx.rounds(7)));
      return typeof r === 'string' ? skipped(r) : samples('ms', r.attach);
    },
  },
  {
    id: 'hotplug.detach',
    title: 'detach-device of a VF, answered when the guest has let go (libvirt: 82.5 ms)',
    measure: async (ctx) => {
      const r = await (once ??= measure(ctx.rounds(7)));
      return typeof r === 'string' ? skipped(r) : samples('ms', r.detach);
    },
  },
] satisfies Figure[];
