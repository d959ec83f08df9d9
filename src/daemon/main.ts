#!/usr/bin/env -S node --max-semi-space-size=1
import { Command } from 'commander';
import { asPassthruError, PassthruError } from '../conf/error.ts';
import { createLogger } from '../lib/logger.ts';
import { DEFAULT_SOCKET, DEFAULT_STATE_DIR, readOnlySocketOf } from '../protocol/wire.ts';
import { openDaemon } from './open.ts';
import { serveApi } from './serve.ts';
import { loadIdentity, parseListen, serveTls } from './tls.ts';

interface Options {
  host: string;
  stateDir: string;
  socket: string;
  spareRootPorts?: string;
  socketRo?: string;
  socketGroup?: string;
  listenTls?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
}

async function main(): Promise<void> {
  const opts = new Command('passthrud')
    .description('passthru daemon: owns the host devices and the QEMU guests that hold them')
    .option('--host <spec>', "host backend: 'linux' or 'sim:DIR'", 'linux')
    .option('--state-dir <dir>', 'where definitions, status and the device journal live', DEFAULT_STATE_DIR)
    .option('--socket <path>', 'unix socket of the API (read-write: root and --socket-group, 0660)', DEFAULT_SOCKET)
    .option('--socket-ro <path>', "read-only socket, mode 0666 (default: the socket's -ro.sock twin; '' for none)")
    .option('--socket-group <group>', 'group that may use the read-write socket')
    .option('--spare-root-ports <n>', 'free pcie-root-ports each q35 domain keeps for hot-plug (default 1)')
    .option('--listen-tls <addr:port>', 'also serve the API on TCP with mutual TLS (for other hosts: migration)')
    .option('--tls-cert <file>', "this daemon's certificate (PEM), shown to peers in both directions")
    .option('--tls-key <file>', 'the key of --tls-cert (PEM)')
    .option('--tls-ca <file>', 'the CA (PEM) that must have signed every peer')
    .parse()
    .opts<Options>();

  const log = createLogger();
  const listen = opts.listenTls === undefined ? undefined : parseListen(opts.listenTls);
  const tls = await loadIdentity({ cert: opts.tlsCert, key: opts.tlsKey, ca: opts.tlsCa });
  if (listen && !tls) throw new PassthruError('INVALID_ARG', '--listen-tls needs --tls-cert, --tls-key and --tls-ca');
  const spare = opts.spareRootPorts === undefined ? undefined : Number(opts.spareRootPorts);
  if (spare !== undefined && !(Number.isInteger(spare) && spare >= 0 && spare <= 16)) {
    throw new PassthruError(
      'INVALID_ARG',
      `--spare-root-ports must be a whole number from 0 to 16, not '${opts.spareRootPorts}'`,
    );
  }
  const daemon = await openDaemon({
    host: opts.host,
    stateDir: opts.stateDir,
    log,
    ...(spare === undefined ? {} : { spareRootPorts: spare }),
    ...(tls ? { tls } : {}),
  });
  const socketRo = opts.socketRo ?? readOnlySocketOf(opts.socket);
  const served = await serveApi(daemon, {
    socket: opts.socket,
    socketRo,
    ...(opts.socketGroup === undefined ? {} : { socketGroup: opts.socketGroup }),
  });
  const tcp = listen && tls ? await serveTls(served.readWrite.server, listen, tls, log) : undefined;
  log.info(
    { socket: opts.socket, socketRo, listenTls: opts.listenTls, host: opts.host, stateDir: opts.stateDir },
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
