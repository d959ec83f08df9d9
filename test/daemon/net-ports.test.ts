import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { PassthruError } from '../../src/conf/error.ts';
import type { Daemon } from '../../src/daemon/daemon.ts';
import { openDaemon } from '../../src/daemon/open.ts';
import { createSimHost } from '../../src/host/sim/create.ts';
import { silentLogger } from '../../src/lib/logger.ts';

/** net-port-create / -list / -dumpxml / -delete on a hostdev network (libvirt's virNetworkPort):
 *  a VF held for an owner without a start, journaled in the network's state, kept across a
 *  restart, given back by delete only. */
let dir = '';
let daemon: Daemon;
const open = () => openDaemon({ host: `sim:${join(dir, 'host')}`, stateDir: join(dir, 'state'), log: silentLogger() });

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'passthru-ports-'));
  await createSimHost(join(dir, 'host'), 'intel-x710-2port');
  daemon = await open();
  await daemon.handle({
    kind: 'poolDefine',
    pool: 'network',
    xml: `<network><name>vfs</name><forward mode='hostdev' managed='yes'><pf dev='enp6s0f1'/></forward></network>`,
  });
  await daemon.handle({ kind: 'poolStart', pool: 'network', name: 'vfs' });
});
after(async () => {
  await daemon.close();
  await rm(dir, { recursive: true, force: true });
});

const uuid = (n: number) => `7a4c6b0e-3c53-4a0e-9f55-6c1f3c3c${n.toString().padStart(4, '0')}`;
const port = (n: number, owner = 'web1') => `<networkport><uuid>${uuid(n)}</uuid>
  <owner><name>${owner}</name><uuid>${uuid(9000 + n)}</uuid></owner>
  <mac address='52:54:00:7a:00:0${n}'/></networkport>`;

test('ports take distinct VFs, lowest first, show in net-info and dumpxml, survive a restart, and go back on delete', async () => {
  const info0 = await daemon.handle({ kind: 'poolInfo', pool: 'network', name: 'vfs' });
  const a = await daemon.handle({ kind: 'netPortCreate', network: 'vfs', xml: port(1) });
  const b = await daemon.handle({ kind: 'netPortCreate', network: 'vfs', xml: port(2, 'web2') });
  assert.deepEqual(a, { uuid: uuid(1), owner: 'web1', mac: '52:54:00:7a:00:01', device: '0000:06:0a.0' });
  assert.equal(b.device, '0000:06:0a.1');
  await assert.rejects(
    daemon.handle({ kind: 'netPortCreate', network: 'vfs', xml: port(1) }),
    (e: unknown) => e instanceof PassthruError && /network port .* already exists/.test(e.message),
  );
  const { xml } = await daemon.handle({ kind: 'netPortDumpxml', network: 'vfs', uuid: uuid(1) });
  assert.match(
    xml,
    /<plug type='hostdev-pci' managed='yes'>\s*<address domain='0x0000' bus='0x06' slot='0x0a' function='0x0'\/>/,
  );
  const info = await daemon.handle({ kind: 'poolInfo', pool: 'network', name: 'vfs' });
  assert.equal(info.free, info0.free - 2);
  assert.deepEqual(info.inUse, [
    { device: '0000:06:0a.0', domain: 'web1' },
    { device: '0000:06:0a.1', domain: 'web2' },
  ]);
  // A restart keeps the ports (they are not claimed by running domains).
  await daemon.close();
  daemon = await open();
  assert.deepEqual(
    (await daemon.handle({ kind: 'netPortList', network: 'vfs' })).map((p) => p.device),
    ['0000:06:0a.0', '0000:06:0a.1'],
  );
  await daemon.handle({ kind: 'netPortDelete', network: 'vfs', uuid: uuid(1) });
  await assert.rejects(
    daemon.handle({ kind: 'netPortDelete', network: 'vfs', uuid: uuid(1) }),
    (e: unknown) =>
      e instanceof PassthruError && e.code === 'NO_NETWORK' && /Network port with UUID .* not found/.test(e.message),
  );
  const c = await daemon.handle({ kind: 'netPortCreate', network: 'vfs', xml: port(3) });
  assert.equal(c.device, '0000:06:0a.0', 'the deleted port gave its VF back');
  await daemon.handle({ kind: 'netPortDelete', network: 'vfs', uuid: uuid(2) });
  await daemon.handle({ kind: 'netPortDelete', network: 'vfs', uuid: uuid(3) });
  assert.equal((await daemon.handle({ kind: 'poolInfo', pool: 'network', name: 'vfs' })).free, info0.free);
});
