import { onExit } from '../guest-exit.ts';
import { takeBackIncoming } from '../migration/destination.ts';
import { arrivingWithoutDefinition, settleInterruptedMigration } from '../migration/resume.ts';
import { asPassthruError, PassthruError } from '../../conf/error.ts';
import type { ActionOf } from '../actions.ts';
import type { DaemonContext, HandlerGroup } from '../context.ts';
import { formatDefinition, parseDefinition, withUuid } from '../definitions.ts';
import { checkAllowed } from '../lifecycle.ts';
import { withAuditScope } from '../../host/audit.ts';
import { followGuest } from '../hotplug.ts';
import { destroyRun, reattachRun } from '../runs.ts';
import { spareOption, startDomain } from '../start.ts';
import { completeDefinition } from '../../qemu/define-def.ts';
import { markHybridNetworks } from '../../conf/domain/hybrid.ts';
import { hybridNetworks } from '../hybrid.ts';
import { chooseAccel, readProcModules } from '../../qemu/accel.ts';
import { nativeCommandLine } from '../../qemu/native.ts';

/** Domains: definitions and their lifecycle. Each action on one domain holds its lock. */
export const domainHandlers = {
  define: (a, ctx) => define(a, ctx),
  undefine: (a, ctx) =>
    ctx.domains.locked(a, a.name, async () => {
      await ctx.store.removeConfig(a.name);
      await ctx.store.setAutostart(a.name, false);
      ctx.domains.delete(a.name);
      ctx.events.emit({ type: 'domain', event: 'undefined', name: a.name });
      return {};
    }),
  start: (a, ctx) =>
    ctx.domains.locked(a, a.name, async (obj) => {
      obj.state = 'starting';
      try {
        obj.run = await startDomain(ctx.runs, obj.def, (reason, st) => onExit(ctx, a.name, reason, st));
      } catch (err) {
        obj.state = 'shutoff';
        throw err;
      }
      obj.state = 'running';
      followGuest(ctx, a.name, obj.run);
      obj.reason = 'booted';
      ctx.events.emit({ type: 'domain', event: 'started', name: a.name });
      return ctx.domains.summary(a.name, obj);
    }),
  destroy: (a, ctx) =>
    ctx.domains.locked(a, a.name, async (obj) => {
      const run = obj.run;
      if (!run) throw new PassthruError('OPERATION_INVALID', `domain ${a.name} is not running`);
      obj.state = 'stopping';
      await destroyRun(ctx.runs, run);
      obj.run = undefined;
      obj.state = 'shutoff';
      obj.reason = 'destroyed';
      ctx.events.emit({ type: 'domain', event: 'stopped', name: a.name, reason: 'destroyed' });
      return ctx.domains.summary(a.name, obj);
    }),
  domxmlToNative: async (a, ctx) => {
    const def = parseDefinition(a.xml, 'domain XML');
    const argv = nativeCommandLine(def, {
      stateDir: ctx.store.dir,
      accel: chooseAccel(await readProcModules()),
      emulator: ctx.runs.emulator,
      ...spareOption(ctx.runs),
    });
    return { binary: argv[0] ?? ctx.runs.emulator, argv: argv.slice(1) };
  },
  list: (_a, ctx) => ctx.domains.entries().map(([n, o]) => ctx.domains.summary(n, o)),
  dumpxml: (a, ctx) => {
    const obj = ctx.domains.get(a.name);
    const def = !a.inactive && obj.run ? obj.run.live : obj.def;
    return { xml: formatDefinition(def, a.inactive || !obj.run) };
  },
  console: (a, ctx) => {
    // Not under the domain's lock: a session lasts as long as the user stays attached.
    const obj = ctx.domains.get(a.name);
    checkAllowed(a, a.name, obj.state);
    const console = obj.run?.console;
    if (console === undefined || console.ended) {
      throw new PassthruError('OPERATION_INVALID', `domain ${a.name} has no console passthrud holds`, {
        hint: "its <serial> goes to a file; a <serial type='pty'> (or none) gives a console",
      });
    }
    return console;
  },
} satisfies HandlerGroup<
  'define' | 'undefine' | 'start' | 'destroy' | 'list' | 'dumpxml' | 'console' | 'domxmlToNative'
>;

async function define(action: ActionOf<'define'>, ctx: DaemonContext) {
  // What libvirt's QEMU driver fills in at define (addresses, implicit devices) is written
  // with the definition, so no address moves later.
  // A network interface on a hostdev-hybrid network gets its standby's address now too.
  const doc = markHybridNetworks(parseDefinition(action.xml, 'domain XML'), hybridNetworks(ctx.pools));
  const parsed = completeDefinition(doc, spareOption(ctx.runs));
  const existing = ctx.domains.find(parsed.name);
  const def = withUuid(parsed, existing?.def);
  if (existing?.def.uuid && def.uuid && existing.def.uuid !== def.uuid) {
    throw new PassthruError(
      'DOMAIN_EXISTS',
      `domain ${def.name} already exists with uuid ${existing.def.uuid}, not ${def.uuid}`,
    );
  }
  const uuidTwin = ctx.domains.entries().find(([n, o]) => n !== def.name && def.uuid && o.def.uuid === def.uuid);
  if (uuidTwin) {
    throw new PassthruError('DOMAIN_EXISTS', `domain ${uuidTwin[0]} already has uuid ${String(def.uuid)}`);
  }
  await ctx.store.saveConfig(def.name, formatDefinition(def, true));
  if (existing) existing.def = def;
  else ctx.domains.add(def);
  ctx.events.emit({ type: 'domain', event: 'defined', name: def.name });
  return ctx.domains.summary(def.name, ctx.domains.get(def.name));
}

/** Loads the definitions, takes back the QEMUs that run (after a daemon restart) and gives
 *  back the devices of domains that no longer run. */
export async function loadDomains(ctx: DaemonContext): Promise<void> {
  for (const { name, xml } of await ctx.store.configs()) {
    try {
      ctx.domains.add(parseDefinition(xml, `domains/${name}.xml`));
    } catch (err) {
      // One unreadable definition must not keep every other domain from being managed.
      ctx.log.error({ domain: name, err: asPassthruError(err).message }, 'definition skipped: it cannot be read');
    }
  }
  for (const status of await ctx.store.statuses()) {
    // A guest that was arriving here has no definition yet: it is taken up only to be given up.
    const arriving = ctx.domains.find(status.name) ? undefined : arrivingWithoutDefinition(ctx, status);
    const obj = ctx.domains.find(status.name);
    if (!obj) continue;
    obj.run = await reattachRun(ctx.runs, status, (reason, st) => onExit(ctx, status.name, reason, st));
    if (arriving && !obj.run) ctx.domains.delete(status.name);
    if (obj.run && status.incoming === true) {
      takeBackIncoming(ctx, obj, obj.run);
      continue;
    }
    obj.state = obj.run ? 'running' : 'shutoff';
    if (obj.run) followGuest(ctx, status.name, obj.run);
    // A guest paused before the daemon restarted is still paused.
    if (obj.run && ((await obj.run.proc.qmp.execute('query-status')) as { status: string }).status === 'paused') {
      obj.state = 'paused';
    }
    if (obj.run && status.migratingTo !== undefined) settleInterruptedMigration(ctx, obj, obj.run, status.migratingTo);
  }
  const running = new Set(ctx.domains.entries().flatMap(([n, o]) => (o.run ? [n] : [])));
  for (const name of await ctx.runs.qemuOwner.recover(running)) {
    ctx.log.warn(
      { domain: name },
      'gave back the files and /dev/vfio nodes lent to the QEMU of a domain that was not running',
    );
  }
  for (const name of await ctx.runs.hostdevs.recover(running)) {
    ctx.log.warn({ domain: name }, 'gave back the host devices of a domain that was not running');
  }
  // Autostart (libvirt's autostart links): a domain that should run and does not is started;
  // one that cannot start is logged, and the daemon serves the others.
  const autostarts = await ctx.store.autostarts();
  for (const [name, obj] of ctx.domains.entries()) {
    obj.autostart = autostarts.has(name);
    if (!obj.autostart || obj.run) continue;
    await withAuditScope({ operation: 'autostart', domain: name }, () =>
      domainHandlers.start({ kind: 'start', name }, ctx),
    ).then(
      () => ctx.log.info({ domain: name }, 'autostarted'),
      (err: unknown) => ctx.log.error({ domain: name, err: asPassthruError(err).message }, 'autostart failed'),
    );
  }
}
