import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatDomainXml } from '../../../src/conf/domain/format.ts';
import { readDomainXml } from '../../../src/conf/domain/read.ts';
import { typedDisks } from '../../../src/conf/domain/disk.ts';
import { PassthruError } from '../../../src/conf/error.ts';
import { buildArgv } from '../../../src/qemu/argv.ts';
import { prepareLiveDef } from '../../../src/qemu/live-def.ts';

const domain = (disks: string): string => `<domain type='kvm'>
  <name>web1</name>
  <uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid>
  <memory unit='KiB'>262144</memory>
  <currentMemory unit='KiB'>262144</currentMemory>
  <vcpu placement='static'>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
${disks}    <controller type='pci' index='0' model='pcie-root'/>
  </devices>
</domain>
`;

const DISKS = `    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='none' discard='unmap'/>
      <source file='/var/lib/images/web1.qcow2'/>
      <target dev='vda' bus='virtio'/>
      <serial>WEB1-ROOT</serial>
      <boot order='1'/>
    </disk>
    <disk type='block' device='disk'>
      <driver name='qemu' type='raw' cache='writethrough'/>
      <source dev='/dev/vg0/data'/>
      <target dev='sdb' bus='scsi'/>
      <address type='drive' controller='0' bus='0' target='0' unit='1'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <target dev='sdc' bus='sata'/>
      <readonly/>
      <address type='drive' controller='0' bus='0' target='0' unit='2'/>
    </disk>
`;

test('typed disks read and format back unchanged, drive addresses filled as libvirt does', () => {
  const xml = domain(DISKS);
  const def = readDomainXml(xml);
  assert.equal(formatDomainXml(def, { inactive: true }), xml);
  const [vda, sdb, sdc] = typedDisks(def.devices);
  assert.deepEqual(vda?.target, { dev: 'vda', bus: 'virtio' });
  assert.equal(vda?.serial, 'WEB1-ROOT');
  assert.equal(sdb?.type, 'block');
  assert.equal(sdc?.source, undefined);
  // Without an address, sdc on SATA gets port 2 (its name's index), as libvirt gives it.
  const noAddr = readDomainXml(domain(DISKS.replace(/\s*<address type='drive'[^>]*unit='2'\/>/, '')));
  assert.deepEqual(typedDisks(noAddr.devices)[2]?.guestAddress, {
    type: 'drive',
    controller: 0,
    bus: 0,
    target: 0,
    unit: 2,
  });
});

test('on q35: virtio-blk on a root port, SCSI on a virtio-scsi controller libvirt-style, SATA on the ICH9 AHCI', () => {
  const live = prepareLiveDef(readDomainXml(domain(DISKS)));
  const argv = buildArgv(live, {
    accel: 'tcg',
    qmpSocket: '/q',
    consoleLog: '/c',
    pidfile: '/p',
    hostDevices: new Map(),
  });
  const devices = argv.filter((_, i) => argv[i - 1] === '-device').map((d) => JSON.parse(d) as Record<string, unknown>);
  const byId = (id: string) => devices.find((d) => d['id'] === id);
  assert.deepEqual(byId('scsi0'), { driver: 'virtio-scsi-pci', id: 'scsi0', bus: 'pci.1', addr: '0x0' });
  assert.deepEqual(byId('virtio-disk0'), {
    driver: 'virtio-blk-pci',
    bus: 'pci.2',
    addr: '0x0',
    drive: 'libvirt-2-format',
    id: 'virtio-disk0',
    bootindex: 1,
    'write-cache': 'on',
    serial: 'WEB1-ROOT',
  });
  assert.deepEqual(byId('scsi0-0-0-1'), {
    driver: 'scsi-hd',
    bus: 'scsi0.0',
    channel: 0,
    'scsi-id': 0,
    lun: 1,
    device_id: 'drive-scsi0-0-0-1',
    drive: 'libvirt-1-format',
    id: 'scsi0-0-0-1',
    'write-cache': 'off',
  });
  // An empty cdrom: a device without a drive.
  assert.deepEqual(byId('sata0-0-2'), { driver: 'ide-cd', bus: 'ide.2', id: 'sata0-0-2' });
  const blockdevs = argv.filter((_, i) => argv[i - 1] === '-blockdev');
  assert.equal(blockdevs.length, 4);
  assert.deepEqual(JSON.parse(blockdevs[0] ?? ''), {
    driver: 'file',
    filename: '/var/lib/images/web1.qcow2',
    'node-name': 'libvirt-2-storage',
    cache: { direct: true, 'no-flush': false },
    'auto-read-only': true,
    discard: 'unmap',
  });
  // The live XML says the scsi controller libvirt would add and the node indexes.
  const xml = formatDomainXml(live);
  assert.match(xml, /<source file='\/var\/lib\/images\/web1.qcow2' index='2'\/>/);
  assert.match(xml, /<controller type='scsi' index='0' model='virtio-scsi'>/);
  // Running it again on the live definition changes nothing.
  assert.deepEqual(prepareLiveDef(live), live);
});

test('bad disks are refused naming the element and line', () => {
  const bad = (disks: string, re: RegExp): void => {
    assert.throws(
      () => readDomainXml(domain(disks)),
      (e: PassthruError) => e.code === 'XML_INVALID' && re.test(e.message),
    );
  };
  bad(
    `    <disk type='file' device='disk'>\n      <source file='rel/x.img'/>\n      <target dev='vda' bus='virtio'/>\n    </disk>\n`,
    /<source> at line \d+: file='rel\/x.img' must be an absolute path/,
  );
  bad(
    `    <disk type='file' device='disk'>\n      <driver name='qemu' type='qcow2' cache='fast'/>\n      <source file='/x.img'/>\n      <target dev='vda' bus='virtio'/>\n    </disk>\n`,
    /cache='fast' is not one of/,
  );
  bad(
    `    <disk type='file' device='disk'>\n      <target dev='vda' bus='virtio'/>\n    </disk>\n`,
    /needs <source file=/,
  );
  bad(
    `    <disk type='file' device='disk'>\n      <source file='/x.img'/>\n      <target dev='xvda' bus='virtio'/>\n    </disk>\n`,
    /dev='xvda' is not a disk name/,
  );
  bad(
    `    <disk type='block' device='disk'>\n      <source file='/x.img'/>\n      <target dev='vda' bus='virtio'/>\n    </disk>\n`,
    /names its image with dev=, not file=/,
  );
  bad(
    `    <disk type='file' device='cdrom'>\n      <source file='/x.iso'/>\n      <target dev='vda' bus='virtio'/>\n    </disk>\n`,
    /a cdrom cannot be on bus 'virtio'/,
  );
  bad(
    `    <disk type='file' device='disk'>\n      <source file='/x.img'/>\n      <target dev='vda'/>\n    </disk>\n    <disk type='file' device='disk'>\n      <source file='/y.img'/>\n      <target dev='vda'/>\n    </disk>\n`,
    /target dev 'vda' is already used by the disk at line/,
  );
});
