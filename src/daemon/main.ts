#!/usr/bin/env -S node --max-semi-space-size=1 --v8-pool-size=1
import { asPassthruError, PassthruError } from '../conf/error.ts';
import { createLogger } from '../lib/logger.ts';
import { resolveConfig } from './config/load.ts';
import { helpText, printConfig } from './config/print.ts';
import { defaultAuditLog } from './audit-log.ts';
import { openDaemon } from './open.ts';
import { resolveQemuUser } from '../qemu/run-as.ts';
import { serveApi } from './serve.ts';
import { loadIdentity, parseListen, serveTls } from './tls.ts';

async function main(): Promise<void> {
  const resolved = resolveConfig(process.argv.slice(2), process.env);
  if (resolved.help) return void process.stdout.write(helpText());
  if (resolved.printConfig) return void process.stdout.write(printConfig(resolved));
  const c = resolved.config;

  const log = createLogger(c['log-level']);
  const listen = c['listen-tls'] === undefined ? undefined : parseListen(c['listen-tls']);
  const tls = await loadIdentity({ cert: c['tls-cert'], key: c['tls-key'], ca: c['tls-ca'] });
  if (listen && !tls) throw new PassthruError('INVALID_ARG', '--listen-tls needs --tls-cert, --tls-key and --tls-ca');
  const qemuUser = c['qemu-user'] === undefined ? undefined : await resolveQemuUser(c['qemu-user']);
  const daemon = await openDaemon({
    host: c.host,
    ...(qemuUser ? { qemuUser } : {}),
    stateDir: c['state-dir'],
    log,
    emulator: c.qemu,
    spareRootPorts: c['spare-root-ports'],
    ...(tls ? { tls } : {}),
    migration: {
      stallMs: c['migration-stall-timeout'] * 1000,
      incomingLeaseMs: c['migration-incoming-lease'] * 1000,
    },
    auditLog: {
      path: c['audit-log'] ?? defaultAuditLog(c['state-dir']),
      maxBytes: c['audit-log-max-bytes'],
    },
  });
  const served = await serveApi(daemon, {
    socket: c.socket,
    socketRo: c['socket-ro'],
    ...(c['socket-group'] === undefined ? {} : { socketGroup: c['socket-group'] }),
  });
  const tcp = listen && tls ? await serveTls(served.readWrite.server, listen, tls, log) : undefined;
  log.info(
    {
      socket: c.socket,
      socketRo: c['socket-ro'],
      listenTls: c['listen-tls'],
      host: c.host,
      stateDir: c['state-dir'],
      auditLog: daemon.auditLog,
      config: resolved.file,
    },
    'passthrud ready',
  );

  const stop = async (signal: string): Promise<void> => {
    log.info({ signal }, 'passthrud stopping; running guests keep running');
    tcp?.close();
    await served.close();
    await daemon.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
}

main().catch((err: unknown) => {
  const e = asPassthruError(err);
  process.stderr.write(`passthrud: error: ${e.message}\n${e.hint ? `hint: ${e.hint}\n` : ''}`);
  process.exit(1);
});
