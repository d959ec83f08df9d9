import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { openSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { PassthruError } from '../../src/conf/error.ts';
import { Client } from '../../src/protocol/client.ts';
import type { XmlBody } from '../../src/protocol/wire.ts';
import { netnsSkipReason, REPO_ROOT, requireE2e } from './helpers/env.ts';
import { type E2eGuest, e2eGuest } from './helpers/guest.ts';
import { guestXml, waitForLine } from './helpers/guest-xml.ts';

/**
 * Bridge and macvtap NICs on the linux backend, in a network namespace this test makes: a
 * Linux bridge, and a veth as the macvtap's parent (this machine's kernel has no dummy
 * driver; a veth end is a netdev of the same kind for a macvtap). passthrud runs inside the
 * namespace, so every tap it makes is there and nothing touches the machine's own links.
 */
const env = e2eGuest();
const ns = `pt-nics-${process.pid}`;
const reason = typeof env === 'string' ? env : netnsSkipReason();
if (reason !== undefined && requireE2e()) throw new Error(`PASSTHRU_REQUIRE_E2E=1 but: ${reason}`);
const skip = reason ?? false;

let dir = '';
let daemon: ChildProcess | undefined;
let client: Client;

const ipn = (...args: string[]): string => execFileSync('ip', ['-n', ns, ...args], { encoding: 'utf8' });
interface Link {
  ifname: string;
  address: string;
  mtu: number;
  master?: string;
  linkinfo?: { info_kind?: string; info_data?: { mode?: string } };
}
const links = (): Link[] => JSON.parse(ipn('-j', '-d', 'link', 'show')) as Link[];

before(async () => {
  if (skip) return;
  dir = await mkdtemp(join(tmpdir(), 'pt-nics-'));
  execFileSync('ip', ['netns', 'add', ns]);
  ipn('link', 'add', 'br0', 'type', 'bridge');
  ipn('link', 'set', 'br0', 'mtu', '1400', 'up');
  ipn('link', 'add', 'uplink0', 'type', 'veth', 'peer', 'name', 'uplink0p');
  ipn('link', 'set', 'uplink0', 'up');
  const socket = join(dir, 'api.sock');
  const log = openSync(join(dir, 'passthrud.log'), 'a');
  daemon = spawn(
    'ip',
    ['netns', 'exec', ns, process.execPath, '--import', 'tsx', join(REPO_ROOT, 'src/daemon/main.ts')].concat([
      '--host',
      'linux',
      '--state-dir',
      join(dir, 'state'),
      '--socket',
      socket,
    ]),
    { stdio: ['ignore', log, log], cwd: REPO_ROOT },
  );
  client = new Client(socket);
  for (let i = 0; i < 600; i++) {
    if (
      await client.get('/domains').then(
        () => true,
        () => false,
      )
    )
      return;
    if (daemon.exitCode !== null) break;
    await sleep(100);
  }
  throw new Error(`passthrud did not come up: ${await readFile(join(dir, 'passthrud.log'), 'utf8').catch(() => '')}`);
});

after(async () => {
  if (skip) return;
  for (const name of ['nics-a', 'nics-b']) await client?.post(`/domains/${name}/destroy`).catch(() => undefined);
  if (daemon?.exitCode === null) {
    const gone = new Promise((r) => daemon?.once('exit', r));
    daemon.kill('SIGTERM');
    await gone;
  }
  execFileSync('ip', ['netns', 'del', ns]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

function domainXml(g: E2eGuest, name: string, devices: string): string {
  return guestXml(g, name, devices, join(dir, `${name}.console`));
}

test('bridge and macvtap NICs: the guest sees each MAC; the tap and macvtap go with the domain', { skip }, async () => {
  if (typeof env === 'string') return;
  const nics = `    <interface type='bridge'>
      <mac address='52:54:00:aa:00:01'/>
      <source bridge='br0'/>
      <model type='virtio'/>
      <mtu size='1400'/>
    </interface>
    <interface type='direct'>
      <mac address='52:54:00:aa:00:02'/>
      <source dev='uplink0' mode='bridge'/>
      <model type='e1000e'/>
    </interface>`;
  await client.post<XmlBody>('/domains', { xml: domainXml(env, 'nics-a', nics) });
  await client.post('/domains/nics-a/start');

  const host = links();
  const tap = host.find((l) => l.ifname === 'vnet0');
  assert.ok(tap, `no vnet0 in ${host.map((l) => l.ifname).join(' ')}`);
  assert.equal(tap.master, 'br0');
  assert.equal(tap.mtu, 1400);
  assert.equal(tap.address, 'fe:54:00:aa:00:01'); // the host end, as libvirt sets it
  const mvt = host.find((l) => l.ifname === 'macvtap0');
  assert.ok(mvt);
  assert.equal(mvt.linkinfo?.info_kind, 'macvtap');
  assert.equal(mvt.linkinfo?.info_data?.mode, 'bridge');
  assert.equal(mvt.address, '52:54:00:aa:00:02');

  const live = (await client.get<XmlBody>('/domains/nics-a/xml')).xml;
  assert.match(live, /<target dev='vnet0'\/>/);
  assert.match(live, /<target dev='macvtap0'\/>/);

  const console = join(dir, 'nics-a.console');
  assert.match(await waitForLine(console, /nic \S+ mac 52:54:00:aa:00:01 /), /driver virtio_net/);
  assert.match(await waitForLine(console, /nic \S+ mac 52:54:00:aa:00:02 /), /driver e1000e/);

  await client.post('/domains/nics-a/destroy');
  const left = links().map((l) => l.ifname);
  assert.ok(!left.includes('vnet0') && !left.includes('macvtap0'), `left behind: ${left.join(' ')}`);
});

test('an unknown bridge or parent netdev is refused before anything is made', { skip }, async () => {
  if (typeof env === 'string') return;
  const before = links()
    .map((l) => l.ifname)
    .sort();
  const cases: [string, RegExp][] = [
    [`<interface type='bridge'><source bridge='nobr9'/></interface>`, /bridge 'nobr9' does not exist/],
    [`<interface type='bridge'><source bridge='uplink0'/></interface>`, /'uplink0' is not a bridge/],
    [`<interface type='direct'><source dev='nodev9' mode='vepa'/></interface>`, /parent network device 'nodev9'/],
  ];
  for (const [nic, re] of cases) {
    await client.post<XmlBody>('/domains', {
      xml: domainXml(env, 'nics-b', `    <interface type='bridge'><source bridge='br0'/></interface>\n    ${nic}`),
    });
    await assert.rejects(client.post('/domains/nics-b/start'), (e: unknown) => {
      assert.ok(e instanceof PassthruError, String(e));
      assert.equal(e.code, 'NO_DEVICE', e.message);
      assert.match(e.message, re);
      return true;
    });
    await client.delete('/domains/nics-b');
  }
  assert.deepEqual(
    links()
      .map((l) => l.ifname)
      .sort(),
    before,
  );
});
