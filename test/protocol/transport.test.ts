import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server as TlsServer } from 'node:tls';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { PassthruError } from '../../src/conf/error.ts';
import { buildApi } from '../../src/daemon/api.ts';
import type { Daemon } from '../../src/daemon/daemon.ts';
import { openDaemon } from '../../src/daemon/open.ts';
import { loadIdentity, parseListen, serveTls } from '../../src/daemon/tls.ts';
import { createSimHost } from '../../src/host/sim/create.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { Client, formatEndpoint, parseEndpoint } from '../../src/protocol/client.ts';
import type { DomainSummary } from '../../src/protocol/wire.ts';
import { type CertFiles, identity, makeCa, makeLeaf } from '../helpers/certs.ts';
import { vfDomainXml } from '../helpers/domains.ts';

const execFileP = promisify(execFile);

/** One daemon, two doors: its unix socket and TCP with mutual TLS (certificates made by
 *  openssl for this test); a peer without a certificate signed by the CA reaches nothing. */
let dir = '';
let daemon: Daemon;
let app: FastifyInstance;
let tcp: TlsServer;
let port = 0;
let good: CertFiles;
let rogue: CertFiles;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'passthru-tls-'));
  const ca = makeCa(dir, 'ca');
  good = makeLeaf(dir, 'daemon-a', ca);
  rogue = makeLeaf(dir, 'intruder', makeCa(dir, 'rogue-ca'));
  await createSimHost(join(dir, 'host'), 'intel-x710-2port');
  daemon = await openDaemon({ host: `sim:${join(dir, 'host')}`, stateDir: join(dir, 'state'), log: silentLogger() });
  app = buildApi(daemon);
  await app.listen({ path: join(dir, 'api.sock') });
  const id = await loadIdentity(good);
  assert.ok(id);
  tcp = await serveTls(app.server, parseListen('127.0.0.1:0'), id, silentLogger());
  port = (tcp.address() as AddressInfo).port;
});
after(async () => {
  tcp.close();
  await app.close();
  await daemon.close();
  await rm(dir, { recursive: true, force: true });
});

test('endpoints: unix:/path, a bare path, tls://HOST:PORT; anything else is refused by name', () => {
  assert.deepEqual(parseEndpoint('unix:/run/a.sock'), { kind: 'unix', path: '/run/a.sock' });
  assert.deepEqual(parseEndpoint('/run/a.sock'), { kind: 'unix', path: '/run/a.sock' });
  assert.deepEqual(parseEndpoint('tls://10.0.0.2:16514'), { kind: 'tls', host: '10.0.0.2', port: 16514 });
  assert.deepEqual(parseEndpoint('tls://[::1]:16514'), { kind: 'tls', host: '::1', port: 16514 });
  assert.equal(formatEndpoint(parseEndpoint('tls://[::1]:16514')), 'tls://[::1]:16514');
  for (const bad of ['tls://host', 'tls://host:99999', 'tcp://1.2.3.4:5', 'unix:', '']) {
    assert.throws(
      () => parseEndpoint(bad),
      (e: unknown) => e instanceof PassthruError && e.code === 'INVALID_ARG',
      bad,
    );
  }
  assert.throws(() => new Client('tls://127.0.0.1:1'), /needs a client certificate/);
  assert.throws(() => parseListen('nowhere'), /invalid --listen-tls 'nowhere'/);
});

test('the same API over mutual TLS as over the unix socket', async () => {
  const local = new Client(`unix:${join(dir, 'api.sock')}`);
  const remote = new Client(`tls://127.0.0.1:${port}`, identity(good));
  const d = await remote.post<DomainSummary>('/domains', { xml: vfDomainXml('over-tls', 1) });
  assert.equal(d.name, 'over-tls');
  assert.deepEqual(
    (await local.get<DomainSummary[]>('/domains')).map((x) => x.name),
    ['over-tls'],
  );
  // Typed errors travel the same way.
  await assert.rejects(
    remote.get('/domains/nonesuch/xml'),
    (e: unknown) => e instanceof PassthruError && e.code === 'NO_DOMAIN',
  );
  // And events.
  let seen = '';
  const opened = new Promise<void>((resolve) => {
    void remote.events((e) => {
      seen = `${e.type}:${'event' in e ? e.event : ''}:${e.name}`;
      return true;
    }, resolve);
  });
  await opened;
  await local.delete('/domains/over-tls');
  for (let i = 0; i < 100 && seen === ''; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(seen, 'domain:undefined:over-tls');
});

test('a client whose certificate the CA did not sign, or with none, is refused and changes nothing', async () => {
  const intruder = new Client(`tls://127.0.0.1:${port}`, { ...identity(rogue), ca: identity(good).ca });
  await assert.rejects(
    intruder.post('/domains', { xml: vfDomainXml('intruded', 1) }),
    (e: unknown) => e instanceof PassthruError && e.code === 'DAEMON_UNREACHABLE',
  );
  // No certificate at all: a bare TLS handshake that offers none.
  const { connect } = await import('node:tls');
  const refused = await new Promise<string>((resolve) => {
    const s = connect({ host: '127.0.0.1', port, ca: identity(good).ca, checkServerIdentity: () => undefined }, () => {
      s.write('GET /domains HTTP/1.1\r\nhost: x\r\n\r\n');
    });
    let got = '';
    s.on('data', (b: Buffer) => (got += b.toString()));
    s.on('error', (err: NodeJS.ErrnoException) => resolve(`error ${err.code ?? err.message}`));
    s.on('close', () => resolve(got === '' ? 'closed' : got));
  });
  assert.doesNotMatch(refused, /HTTP\/1\.1 200/);
  // The client that does not trust the daemon's CA refuses it too.
  const wrongCa = new Client(`tls://127.0.0.1:${port}`, identity(rogue));
  await assert.rejects(wrongCa.get('/domains'), /cannot reach passthrud at tls:\/\/127\.0\.0\.1/);
  assert.deepEqual(await daemon.handle({ kind: 'list' }), []);
});

test('the CLI reaches the daemon over tls:// with PASSTHRU_TLS_*, and says what is missing without them', async () => {
  // Asynchronously: the daemon answering it runs in this very process.
  const run = async (
    env: NodeJS.ProcessEnv,
    ...args: string[]
  ): Promise<{ status: number; stdout: string; stderr: string }> => {
    const r = await execFileP(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', '-c', `tls://127.0.0.1:${port}`, ...args],
      {
        encoding: 'utf8',
        env: { ...process.env, PASSTHRU_TLS_CERT: '', PASSTHRU_TLS_KEY: '', PASSTHRU_TLS_CA: '', ...env },
      },
    ).then(
      (x) => ({ status: 0, stdout: x.stdout, stderr: x.stderr }),
      (err: unknown) => {
        const e = err as { code?: number; stdout?: string; stderr?: string };
        return {
          status: e.code ?? -1,
          stdout: e.stdout ?? '',
          stderr: e.stderr ?? '',
        };
      },
    );
    return r;
  };
  const ok = await run(
    { PASSTHRU_TLS_CERT: good.cert, PASSTHRU_TLS_KEY: good.key, PASSTHRU_TLS_CA: good.ca },
    'list',
    '--all',
    '--json',
  );
  assert.equal(ok.status, 0, ok.stderr);
  assert.deepEqual(JSON.parse(ok.stdout), []);
  const none = await run({}, 'list');
  assert.equal(none.status, 1);
  assert.match(none.stderr, /^error: a tls:\/\/ endpoint needs PASSTHRU_TLS_CERT\n/);
});
