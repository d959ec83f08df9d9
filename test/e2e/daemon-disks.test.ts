import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Client } from '../../src/protocol/client.ts';
import { PassthruError } from '../../src/conf/error.ts';
import { createSimHost } from '../../src/host/sim/create.ts';
import type { DomainSummary, XmlBody } from '../../src/protocol/wire.ts';
import { startDaemon, type TestDaemon } from '../helpers/daemon.ts';
import { type E2eGuest, e2eGuest } from './helpers/guest.ts';
import { guestXml, waitForLine } from './helpers/guest-xml.ts';

/**
 * Disks end to end: passthrud starts a real QEMU whose guest reports what it sees. The images
 * are made here with qemu-img: a qcow2 overlay on a qcow2 base, a raw SCSI disk, a cdrom.
 */
const env = e2eGuest();
let dir = '';
let daemon: TestDaemon | undefined;
let client: Client;

before(async () => {
  if (typeof env === 'string') return;
  dir = await mkdtemp(join(tmpdir(), 'pt-disks-'));
  await createSimHost(join(dir, 'host'), 'intel-x710-2port');
  daemon = await startDaemon(dir);
  client = daemon.client;
});

after(async () => {
  for (const name of ['disks-a', 'disks-b', 'disks-c'])
    await client?.post(`/domains/${name}/destroy`).catch(() => undefined);
  await daemon?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const img = (...args: string[]): void => {
  execFileSync('qemu-img', args, { stdio: 'ignore' });
};

function domainXml(g: E2eGuest, name: string, devices: string): string {
  return guestXml(g, name, devices, join(dir, `${name}.console`));
}

const rejectsWith = async (p: Promise<unknown>, code: string, pattern: RegExp): Promise<void> => {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof PassthruError, String(e));
    assert.equal(e.code, code, e.message);
    assert.match(e.message, pattern);
    return true;
  });
};

test('a qcow2 overlay, a SCSI disk and a cdrom reach the guest; the chain shows in the live XML', {
  skip: typeof env === 'string' ? env : false,
  timeout: 300_000,
}, async () => {
  if (typeof env === 'string') return;
  const base = join(dir, 'base.qcow2');
  const top = join(dir, 'top.qcow2');
  img('create', '-q', '-f', 'qcow2', base, '64M');
  img('create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', base, top);
  img('create', '-q', '-f', 'raw', join(dir, 'data.raw'), '8M');
  writeFileSync(join(dir, 'cd.iso'), Buffer.alloc(1024 * 1024));
  const disks = `    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='none' discard='unmap'/>
      <source file='${top}'/>
      <target dev='vda' bus='virtio'/>
      <serial>pt-disk-1</serial>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='${join(dir, 'data.raw')}'/>
      <target dev='sdb' bus='scsi'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source file='${join(dir, 'cd.iso')}'/>
      <target dev='sdc' bus='sata'/>
      <readonly/>
    </disk>`;
  await client.post('/domains', { xml: domainXml(env, 'disks-a', disks) });
  await client.post<DomainSummary>('/domains/disks-a/start');
  const consoleLog = join(dir, 'disks-a.console');
  // The overlay shows the base's size; the cdrom is read-only in the guest.
  assert.match(await waitForLine(consoleLog, /disk vda /), /disk vda size 67108864 ro 0 serial pt-disk-1$/);
  assert.match(await waitForLine(consoleLog, /disk sda /), /disk sda size 8388608 ro 0 /);
  assert.match(await waitForLine(consoleLog, /disk sr0 /), /disk sr0 size 1048576 ro 1 /);

  const live = (await client.get<XmlBody>('/domains/disks-a/xml')).xml;
  const vda =
    /<disk type='file' device='disk'>(?:(?!<\/disk>)[\s\S])*?<target dev='vda'[\s\S]*?<\/disk>/.exec(live)?.[0] ?? '';
  assert.match(vda, new RegExp(`<source file='${top}' index='\\d+'/>`));
  assert.match(
    vda,
    new RegExp(
      `<backingStore type='file' index='\\d+'>\\s*<format type='qcow2'/>\\s*<source file='${base}'/>\\s*<backingStore/>`,
    ),
  );
  assert.match(vda, /<alias name='virtio-disk0'\/>/);
  const inactive = (await client.get<XmlBody>('/domains/disks-a/xml?inactive=1')).xml;
  assert.doesNotMatch(inactive, /backingStore/);

  // Another domain may not open the image disks-a writes; nothing of it starts.
  const other = `    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='${top}'/>
      <target dev='vda' bus='virtio'/>
    </disk>`;
  await client.post('/domains', { xml: domainXml(env, 'disks-b', other) });
  await rejectsWith(
    client.post('/domains/disks-b/start'),
    'DEVICE_IN_USE',
    /disk vda of domain disks-b: image .*top\.qcow2 is in use by running domain disks-a/,
  );
  const list = await client.get<DomainSummary[]>('/domains');
  assert.equal(list.find((d) => d.name === 'disks-b')?.state, 'shutoff');

  // An overlay whose backing file is gone is refused before QEMU starts.
  const lost = join(dir, 'lost.qcow2');
  const orphan = join(dir, 'orphan.qcow2');
  img('create', '-q', '-f', 'qcow2', lost, '1M');
  img('create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', lost, orphan);
  await rm(lost);
  await client.post('/domains', { xml: domainXml(env, 'disks-c', other.replace(top, orphan)) });
  await rejectsWith(
    client.post('/domains/disks-c/start'),
    'NO_DEVICE',
    /disk vda of domain disks-c: backing file .*lost\.qcow2 of image .*orphan\.qcow2 does not exist/,
  );

  await client.post('/domains/disks-a/destroy');
  // Once disks-a is gone its image is free.
  await client.post('/domains/disks-b/start');
  await client.post('/domains/disks-b/destroy');
});
