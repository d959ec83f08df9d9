import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { endpointOf } from '../../src/cli/context.ts';
import { type ActionKind, READ_ONLY } from '../../src/daemon/actions.ts';
import type { Daemon } from '../../src/daemon/daemon.ts';
import { openDaemon } from '../../src/daemon/open.ts';
import { groupId, serveApi } from '../../src/daemon/serve.ts';
import { createSimHost } from '../../src/host/sim/create.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { readOnlySocketOf } from '../../src/protocol/wire.ts';
import { vfDomainXml } from '../helpers/domains.ts';

/** The two sockets and the request bodies, over real unix sockets. */
let dir = '';
let daemon: Daemon;
let close: () => Promise<void> = () => Promise.resolve();
let rw = '';
let ro = '';

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'passthru-access-'));
  await createSimHost(join(dir, 'host'), 'intel-x710-2port');
  daemon = await openDaemon({ host: `sim:${join(dir, 'host')}`, stateDir: join(dir, 'state'), log: silentLogger() });
  rw = join(dir, 'passthru.sock');
  ro = readOnlySocketOf(rw);
  const served = await serveApi(daemon, { socket: rw, socketRo: ro });
  close = () => served.close();
  await daemon.handle({ kind: 'define', xml: vfDomainXml('web1', 1) });
  await daemon.handle({ kind: 'poolDefine', pool: 'network', xml: NET });
  await daemon.handle({ kind: 'poolStart', pool: 'network', name: 'pool0' });
  await daemon.handle({ kind: 'netPortCreate', network: 'pool0', xml: PORT });
});
after(async () => {
  await close();
  await daemon.close();
  await rm(dir, { recursive: true, force: true });
});

interface Reply {
  readonly status: number;
  /** JSON, or the text of another content type (the metrics). */
  readonly body: { code?: string; message?: string; text?: string };
}

/** One raw request: `body` is sent as given (a string) or as JSON. */
function call(
  socket: string,
  method: string,
  path: string,
  body?: unknown,
  type = 'application/json',
  extra: Readonly<Record<string, string>> = {},
): Promise<Reply> {
  const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath: socket,
        method,
        path,
        headers: {
          ...extra,
          ...(payload === undefined ? {} : { 'content-type': type, 'content-length': Buffer.byteLength(payload) }),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const json = (res.headers['content-type'] ?? 'application/json').startsWith('application/json');
          const parsed = text === '' ? {} : json ? (JSON.parse(text) as Reply['body']) : { text };
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

const NET = `<network>
  <name>pool0</name>
  <forward mode='hostdev' managed='yes'><pf dev='enp6s0f1'/></forward>
</network>`;

const HOSTDEV = `<hostdev mode='subsystem' type='pci' managed='yes'>
  <source><address domain='0x0000' bus='0x06' slot='0x02' function='0x5'/></source>
</hostdev>`;

const PORT = `<networkport><uuid>7a4c6b0e-3c53-4a0e-9f55-6c1f3c3c0001</uuid>
  <owner><name>web1</name><uuid>7a4c6b0e-3c53-4a0e-9f55-6c1f3c3c0002</uuid></owner>
  <mac address='52:54:00:7a:00:01'/></networkport>`;

/** One request per action: a new action does not compile until it has one here. */
const EXAMPLES: Readonly<
  Record<ActionKind, { method: string; path: string; body?: unknown; headers?: Record<string, string> }>
> = {
  define: { method: 'POST', path: '/domains', body: { xml: vfDomainXml('intruder', 2) } },
  undefine: { method: 'DELETE', path: '/domains/web1' },
  start: { method: 'POST', path: '/domains/web1/start' },
  destroy: { method: 'POST', path: '/domains/web1/destroy' },
  list: { method: 'GET', path: '/domains' },
  dumpxml: { method: 'GET', path: '/domains/web1/xml?inactive=1' },
  console: {
    method: 'GET',
    path: '/domains/web1/console',
    headers: { upgrade: 'passthru-console', connection: 'Upgrade' },
  },
  nodedevList: { method: 'GET', path: '/nodedevs?cap=pci' },
  nodedevDumpxml: { method: 'GET', path: '/nodedevs/pci_0000_06_00_0/xml' },
  nodedevVfTable: { method: 'GET', path: '/nodedevs/pci_0000_06_00_0/vfs' },
  nodedevDetach: { method: 'POST', path: '/nodedevs/pci_0000_06_02_3/detach', body: {} },
  nodedevReattach: { method: 'POST', path: '/nodedevs/pci_0000_06_02_3/reattach' },
  nodedevReset: { method: 'POST', path: '/nodedevs/pci_0000_06_02_3/reset' },
  nodedevCheck: { method: 'GET', path: '/nodedevs/pci_0000_06_02_3/check' },
  nodedevSriov: { method: 'POST', path: '/nodedevs/pci_0000_06_00_0/sriov', body: { numVfs: 2 } },
  shutdown: { method: 'POST', path: '/domains/web1/shutdown', body: { timeoutMs: 1000 } },
  reboot: { method: 'POST', path: '/domains/web1/reboot', body: { timeoutMs: 1000 } },
  suspend: { method: 'POST', path: '/domains/web1/suspend' },
  resume: { method: 'POST', path: '/domains/web1/resume' },
  dominfo: { method: 'GET', path: '/domains/web1/info' },
  autostart: { method: 'POST', path: '/domains/web1/autostart', body: { enable: true } },
  domxmlToNative: { method: 'POST', path: '/native', body: { xml: vfDomainXml('native', 2) } },
  attachDevice: { method: 'POST', path: '/domains/web1/devices', body: { xml: HOSTDEV, config: true } },
  detachDevice: { method: 'POST', path: '/domains/web1/devices/detach', body: { xml: HOSTDEV, config: true } },
  detachDeviceAlias: { method: 'POST', path: '/domains/web1/devices/hostdev0/detach', body: { config: true } },
  domiflist: { method: 'GET', path: '/domains/web1/interfaces' },
  nodedevRelease: { method: 'POST', path: '/nodedevs/pci_0000_06_02_3/release' },
  domhostdev: { method: 'GET', path: '/domains/web1/hostdevs' },
  poolDefine: { method: 'POST', path: '/networks', body: { xml: NET } },
  poolUndefine: { method: 'DELETE', path: '/networks/pool0' },
  poolStart: { method: 'POST', path: '/networks/pool0/start' },
  poolDestroy: { method: 'POST', path: '/networks/pool0/destroy' },
  poolAutostart: { method: 'POST', path: '/networks/pool0/autostart', body: { enable: true } },
  poolList: { method: 'GET', path: '/networks' },
  poolDumpxml: { method: 'GET', path: '/networks/pool0/xml?inactive=1' },
  poolInfo: { method: 'GET', path: '/networks/pool0/info' },
  version: { method: 'GET', path: '/version' },
  netPortCreate: { method: 'POST', path: '/networks/pool0/ports', body: { xml: PORT } },
  netPortDelete: { method: 'DELETE', path: '/networks/pool0/ports/7a4c6b0e-3c53-4a0e-9f55-6c1f3c3c0001' },
  netPortList: { method: 'GET', path: '/networks/pool0/ports' },
  netPortDumpxml: { method: 'GET', path: '/networks/pool0/ports/7a4c6b0e-3c53-4a0e-9f55-6c1f3c3c0001/xml' },
  migrate: { method: 'POST', path: '/domains/web1/migrate', body: { dest: 'unix:/nonexistent.sock' } },
  migrateCheck: { method: 'POST', path: '/migrations/check', body: { xml: '<domain/>' } },
  migrateIncoming: {
    method: 'POST',
    path: '/migrations/incoming',
    body: { xml: '<domain/>', listenHost: '127.0.0.1', tls: false },
  },
  migrateRenew: { method: 'POST', path: '/migrations/web1/renew' },
  migrateFinish: { method: 'POST', path: '/migrations/web1/finish', body: { ok: false } },
  migratePlug: { method: 'POST', path: '/migrations/web1/plug', body: { xml: '<devices/>' } },
  metrics: { method: 'GET', path: '/metrics' },
  audit: { method: 'GET', path: '/audit?device=0000:06:02.3&limit=10' },
};

/** Everything a write could touch: every file of the daemon's state and of the sim host. */
async function snapshot(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const root of [join(dir, 'state'), join(dir, 'host')]) {
    for (const f of await readdir(root, { recursive: true, withFileTypes: true })) {
      if (!f.isFile() || f.name === 'lock' || f.name.endsWith('.sock')) continue;
      const p = join(f.parentPath, f.name);
      out[p] = await readFile(p, 'utf8').catch(() => '(gone)');
    }
  }
  return out;
}

test('the sockets: read-write 0660, read-only 0666 beside it', async () => {
  assert.equal((await stat(rw)).mode & 0o777, 0o660);
  assert.equal((await stat(ro)).mode & 0o777, 0o666);
  assert.equal(ro, join(dir, 'passthru-ro.sock'));
});

test('every action of the table on the read-only socket: writes 403 ACCESS_DENIED and nothing changes; reads work', async () => {
  const before = await snapshot();
  const kinds = Object.keys(READ_ONLY) as ActionKind[];
  for (const kind of kinds) {
    const ex = EXAMPLES[kind];
    const r = await call(ro, ex.method, ex.path, ex.body, 'application/json', ex.headers);
    if (!READ_ONLY[kind]) {
      assert.equal(r.status, 403, `${kind}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.code, 'ACCESS_DENIED');
      assert.match(r.body.message ?? '', new RegExp(`'${kind}'`));
      // Access is decided before the body is read: a bad body is still 403.
      const bad = await call(ro, ex.method, ex.path, '{not json', 'application/json', ex.headers);
      assert.equal(bad.status, 403, kind);
    } else {
      assert.equal(r.status, 200, `${kind}: ${JSON.stringify(r.body)}`);
      const same = await call(rw, ex.method, ex.path, ex.body);
      // The metrics count the requests themselves: the same series on both, not the same figures.
      if (kind === 'metrics') assert.match(same.body.text ?? '', /^passthru_operations_total\{action="metrics"/m);
      else assert.deepEqual(r.body, same.body, `${kind} reads the same on both sockets`);
    }
  }
  assert.deepEqual(await snapshot(), before);
  assert.deepEqual(
    (await daemon.handle({ kind: 'list' })).map((d) => d.name),
    ['web1'],
  );
  // The same writes work on the read-write socket (so the 403s above were the socket's doing).
  const sriov = await call(rw, 'POST', '/nodedevs/pci_0000_06_00_0/sriov', { numVfs: 8 });
  assert.equal(sriov.status, 200, JSON.stringify(sriov.body));
});

test('the events stream is served on the read-only socket', async () => {
  const status = await new Promise<number>((resolve, reject) => {
    const req = request({ socketPath: ro, path: '/events' }, (res) => {
      resolve(res.statusCode ?? 0);
      req.destroy();
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(status, 200);
});

test('bodies: wrong types, unknown fields, not JSON -> 400 naming the field; nothing changes', async () => {
  const before = await snapshot();
  const cases: [string, string, unknown, RegExp][] = [
    ['POST', '/domains', { xml: 123 }, /field 'xml' of the request body must be a string/],
    ['POST', '/domains', { xml: vfDomainXml('x', 2), owner: 'me' }, /unknown field 'owner' in the request body/],
    ['POST', '/domains', {}, /the request body lacks the field 'xml'/],
    ['POST', '/domains', '{"xml": "<domain', /not JSON/],
    ['POST', '/domains', [vfDomainXml('x', 2)], /request body must be an object/],
    ['POST', '/nodedevs/pci_0000_06_00_0/sriov', { numVfs: '2' }, /field 'numVfs' .* must be a whole number/],
    ['POST', '/nodedevs/pci_0000_06_00_0/sriov', { numVfs: 2, force: true }, /unknown field 'force'/],
    ['POST', '/nodedevs/pci_0000_06_02_3/detach', { driver: 'vfio pci; rm' }, /field 'driver'/],
    ['POST', '/domains/web1/start', { now: true }, /unknown field 'now'/],
    ['GET', '/domains/web1/xml?inactive=1&secure=0', undefined, /unknown field 'secure' in the query/],
    ['GET', `/domains/${'x'.repeat(300)}/xml`, undefined, /field 'name' of the path is longer than 256 characters/],
  ];
  for (const [method, path, body, message] of cases) {
    const r = await call(rw, method, path, body);
    assert.equal(r.status, 400, `${method} ${path} ${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.code, 'INVALID_ARG');
    assert.match(r.body.message ?? '', message);
  }
  const plain = await call(rw, 'POST', '/domains', '<domain/>', 'application/xml');
  assert.equal(plain.status, 400, JSON.stringify(plain.body));
  assert.deepEqual(await snapshot(), before);
});

test('an oversized body: 413 REQUEST_TOO_LARGE with a sentence, never 500; nothing changes', async () => {
  const before = await snapshot();
  const huge = { xml: vfDomainXml('huge', 2).replace('<devices>', `<devices><!-- ${'x'.repeat(5 * 1024 * 1024)} -->`) };
  const r = await call(rw, 'POST', '/domains', huge);
  assert.equal(r.status, 413);
  assert.equal(r.body.code, 'REQUEST_TOO_LARGE');
  assert.match(r.body.message ?? '', /^the request body is larger than passthrud accepts \(4 MiB\)$/);
  assert.deepEqual(await snapshot(), before);
});

test('the CLI: -r picks the read-only twin of the socket; the socket group comes from /etc/group', async () => {
  assert.deepEqual(endpointOf('/x/api.sock', true), { kind: 'unix', path: '/x/api-ro.sock' });
  assert.deepEqual(endpointOf('unix:/x/api.sock', false), { kind: 'unix', path: '/x/api.sock' });
  assert.throws(() => endpointOf('tls://10.0.0.2:16514', true), /needs a unix socket/);
  assert.equal(readOnlySocketOf('/run/passthru/passthru.sock'), '/run/passthru/passthru-ro.sock');
  const etc = join(dir, 'group');
  await writeFile(etc, 'root:x:0:\nhostdev:x:997:alice,bob\n');
  assert.equal(await groupId('hostdev', etc), 997);
  assert.equal(await groupId('42', etc), 42);
  await assert.rejects(groupId('nobody-here', etc), /socket group 'nobody-here' does not exist/);
});
