import type { ExitStatus } from '../qemu/process.ts';
import type { DaemonContext } from './context.ts';
import { followGuest } from './hotplug.ts';
import { cleanupRun } from './runs.ts';
import { startDomain } from './start.ts';

/**
 * QEMU went away without destroy: the guest powered off (QEMU exits 0: reason 'shutdown') or
 * QEMU died (a signal, an error: 'crashed'). `<on_poweroff>restart` starts it again, as libvirt
 * does; `destroy` (the default) leaves it shut off.
 */
export function onExit(ctx: DaemonContext, name: string, reason: string, st: ExitStatus): void {
  const obj = ctx.domains.find(name);
  if (!obj?.run) return;
  const run = obj.run;
  ctx.domains.queue(
    obj,
    async () => {
      if (obj.run !== run) return;
      await cleanupRun(ctx.runs, run);
      obj.run = undefined;
      obj.state = 'shutoff';
      // Our own child tells its exit code; one taken back after a restart only whether it
      // announced a shutdown on QMP first (without, it was killed: libvirt's "crashed" too).
      const poweredOff = st.code === 0 || (st.code === undefined && !st.signal && st.announced === true);
      obj.reason = poweredOff ? 'shutdown' : 'crashed';
      ctx.events.emit({ type: 'domain', event: 'stopped', name, reason });
      if (poweredOff && obj.def.onPoweroff === 'restart') {
        obj.state = 'starting';
        try {
          obj.run = await startDomain(ctx.runs, obj.def, (r, s) => onExit(ctx, name, r, s));
          obj.state = 'running';
          followGuest(ctx, name, obj.run);
          obj.reason = 'booted';
          ctx.events.emit({ type: 'domain', event: 'started', name });
        } catch (err) {
          obj.state = 'shutoff';
          throw err;
        }
      }
    },
    (err) => ctx.log.error({ domain: name, err }, 'cleanup after QEMU exit failed'),
    'guest-exit',
  );
}
