import { setTimeout as sleep } from 'node:timers/promises';
import { PassthruError } from '../../conf/error.ts';
import { formatPciAddress } from '../../conf/pci-address.ts';
import { hostdevRequests } from '../../hostdev/request.ts';
import { cpuTimeSeconds } from '../../qemu/process.ts';
import type { DomainInfo, DomainSummary, ShutdownResult } from '../../protocol/wire.ts';
import type { ActionOf } from '../actions.ts';
import type { DaemonContext, HandlerGroup } from '../context.ts';
import type { DomainObj } from '../domain-table.ts';
import type { Running } from '../runs.ts';

/**
 * The running guest: graceful shutdown and reboot through the ACPI power button, pause and
 * resume, what `dominfo` shows, and autostart. Each change holds the domain's lock; a shutdown
 * waits for the guest outside it, so a `destroy` can still end a guest that ignores the button.
 */
export const guestHandlers = {
  shutdown: (a, ctx) => shutdown(a, ctx),
  reboot: (a, ctx) => reboot(a, ctx),
  suspend: (a, ctx) => setPaused(a, ctx, true),
  resume: (a, ctx) => setPaused(a, ctx, false),
  dominfo: (a, ctx) => info(a.name, ctx),
  autostart: (a, ctx) =>
    ctx.domains.locked(a, a.name, async (obj) => {
      await ctx.store.setAutostart(a.name, a.enable);
      obj.autostart = a.enable;
      return info(a.name, ctx);
    }),
} satisfies HandlerGroup<'shutdown' | 'reboot' | 'suspend' | 'resume' | 'dominfo' | 'autostart'>;

function running(obj: DomainObj, name: string): Running {
  if (!obj.run) throw new PassthruError('OPERATION_INVALID', `domain ${name} is not running`);
  return obj.run;
}

/** libvirt's `virsh shutdown` presses the button and returns; ours also waits (bounded) and
 *  says whether the guest went down, because a guest that ignores ACPI is the common surprise. */
async function shutdown(a: ActionOf<'shutdown'>, ctx: DaemonContext): Promise<ShutdownResult> {
  const t0 = performance.now();
  const { obj, run } = await ctx.domains.locked(a, a.name, async (o) => {
    const r = running(o, a.name);
    await r.proc.qmp.execute('system_powerdown');
    return { obj: o, run: r };
  });
  let done = true;
  try {
    await run.proc.waitExit(a.timeoutMs);
  } catch (err) {
    if (!(err instanceof PassthruError && err.code === 'TIMEOUT')) throw err;
    done = false;
  }
  // QEMU's exit queues the cleanup behind the lock (groups/domains.ts onExit): wait for it, so
  // the answer shows the domain shut off.
  for (let i = 0; done && obj.run === run && i < 500; i++) {
    await obj.queue;
    await sleep(10);
  }
  return { domain: ctx.domains.summary(a.name, obj), done, waitedMs: Math.round(performance.now() - t0) };
}

/**
 * libvirt's "fake reboot" (qemuProcessFakeReboot): the power button with QEMU told to pause
 * rather than exit when the guest powers off, then a reset and `cont`. The guest goes down
 * cleanly and comes back in the same QEMU, holding the same host devices.
 */
async function reboot(a: ActionOf<'reboot'>, ctx: DaemonContext): Promise<ShutdownResult> {
  const t0 = performance.now();
  return ctx.domains.locked(a, a.name, async (obj) => {
    const qmp = running(obj, a.name).proc.qmp;
    await qmp.execute('set-action', { shutdown: 'pause' });
    let done = false;
    try {
      await qmp.execute('system_powerdown');
      const deadline = performance.now() + a.timeoutMs;
      while (!done && performance.now() < deadline) {
        const st = (await qmp.execute('query-status')) as { status: string };
        done = st.status === 'shutdown';
        if (!done) await sleep(100);
      }
      if (done) {
        await qmp.execute('system_reset');
        await qmp.execute('cont');
        obj.reason = 'booted';
      }
    } finally {
      await qmp.execute('set-action', { shutdown: 'poweroff' });
    }
    return { domain: ctx.domains.summary(a.name, obj), done, waitedMs: Math.round(performance.now() - t0) };
  });
}

async function info(name: string, ctx: DaemonContext): Promise<DomainInfo> {
  const obj = ctx.domains.get(name);
  const summary: DomainSummary = ctx.domains.summary(name, obj);
  const run = obj.run;
  const def = run?.live ?? obj.def;
  const cpu = run ? await cpuTimeSeconds(run.pid) : undefined;
  return {
    ...summary,
    vcpus: def.vcpus,
    memoryKiB: def.memoryKiB,
    ...(cpu === undefined ? {} : { cpuTimeSeconds: cpu }),
    ...(run ? { uptimeSeconds: Math.max(0, Math.round((Date.now() - Date.parse(run.status.startedAt)) / 1000)) } : {}),
    autostart: obj.autostart,
    hostDevices: run
      ? hostdevRequests(run.live).map((r) => ({ alias: r.alias, address: formatPciAddress(r.address) }))
      : [],
  };
}

/** suspend and resume: QMP stop or cont, then the state, reason and event libvirt gives them. */
function setPaused(a: ActionOf<'suspend' | 'resume'>, ctx: DaemonContext, paused: boolean) {
  return ctx.domains.locked(a, a.name, async (obj) => {
    await running(obj, a.name).proc.qmp.execute(paused ? 'stop' : 'cont');
    obj.state = paused ? 'paused' : 'running';
    obj.reason = paused ? 'user' : 'unpaused';
    ctx.events.emit({ type: 'domain', event: paused ? 'suspended' : 'resumed', name: a.name });
    return ctx.domains.summary(a.name, obj);
  });
}
