import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { DomainDef, HostdevDef, InterfaceDef } from '../../src/conf/domain/types.ts';
import { PassthruError } from '../../src/conf/error.ts';
import { parseMac } from '../../src/conf/mac.ts';
import { parsePciAddress } from '../../src/conf/pci-address.ts';
import { busAliases, hostdevProps } from '../../src/qemu/device-props.ts';
import { planHotplug } from '../../src/qemu/hotplug.ts';
import { prepareLiveDef } from '../../src/qemu/live-def.ts';

const hostdev = (bdf: string): HostdevDef => ({
  mode: 'subsystem',
  type: 'pci',
  source: { managed: true, address: parsePciAddress(bdf) },
});

function live(hostdevs: HostdevDef[], machine = 'q35'): DomainDef {
  return prepareLiveDef({
    name: 'web1',
    memoryKiB: 262144,
    vcpus: 1,
    os: { type: 'hvm', machine },
    devices: { controllers: [], hostdevs, interfaces: [], serials: [], consoles: [] },
  });
}

const opInvalid = (pattern: RegExp) => (e: unknown) =>
  e instanceof PassthruError && e.code === 'OPERATION_INVALID' && pattern.test(e.message);

test('hot-plug goes onto the spare root port, with the next hostdev alias and the boot-time props', () => {
  const l = live([hostdev('0000:06:10.2')]);
  const planned = planHotplug(l, hostdev('0000:06:10.3'));
  assert.equal(planned.alias, 'hostdev1');
  assert.deepEqual(planned.guestAddress, { type: 'pci', domain: 0, bus: 2, slot: 0, function: 0 });
  assert.deepEqual(hostdevProps(planned, { kind: 'vfio', host: planned.source.address }, busAliases(l)), {
    driver: 'vfio-pci',
    host: '0000:06:10.3',
    id: 'hostdev1',
    bus: 'pci.2',
    addr: '0x0',
  });
});

test('an interface hostdev shares the hostdevN numbering; a user interface gets netN', () => {
  const l = live([hostdev('0000:06:10.2')]);
  const vf: InterfaceDef = {
    type: 'hostdev',
    mac: parseMac('52:54:00:00:00:05'),
    source: { managed: true, address: parsePciAddress('0000:06:10.5') },
  };
  assert.equal(planHotplug(l, vf).alias, 'hostdev1');
  assert.equal(planHotplug(l, { type: 'user', model: 'virtio' }).alias, 'net0');
});

test('no free root port, a taken address or alias: OPERATION_INVALID, nothing planned', () => {
  const l = live([hostdev('0000:06:10.2')]);
  const full = {
    ...l,
    devices: { ...l.devices, hostdevs: [...l.devices.hostdevs, planHotplug(l, hostdev('0000:06:10.3'))] },
  };
  assert.throws(
    () => planHotplug(full, hostdev('0000:06:10.4')),
    opInvalid(/no free PCI slot for hot-plugging hostdev2 into domain web1/),
  );
  assert.throws(
    () =>
      planHotplug(l, {
        ...hostdev('0000:06:10.4'),
        guestAddress: { type: 'pci', domain: 0, bus: 1, slot: 0, function: 0 },
      }),
    opInvalid(/0000:01:00\.0: it is in use/),
  );
  assert.throws(
    () => planHotplug(l, { ...hostdev('0000:06:10.4'), alias: 'hostdev0' }),
    opInvalid(/already has a device with alias hostdev0/),
  );
});

test('i440fx: hot-plug takes the next free slot of pci.0', () => {
  const planned = planHotplug(live([hostdev('0000:06:10.2')], 'pc'), hostdev('0000:06:10.3'));
  assert.deepEqual(planned.guestAddress, { type: 'pci', domain: 0, bus: 0, slot: 3, function: 0 });
});

test("hot-plug never takes a carried disk's address (i440fx slot, q35 root port) or the chipset's", () => {
  const disk = (bus: number, slot: number): NonNullable<DomainDef['devices']['disks']>[number] => ({
    kind: 'disk',
    xml: { kind: 'element', name: 'disk', attrs: new Map(), children: [], line: 9, column: 5 },
    guestAddress: { type: 'pci', domain: 0, bus, slot, function: 0 },
  });
  const withDisk = (d: DomainDef, bus: number, slot: number): DomainDef => ({
    ...d,
    devices: { ...d.devices, disks: [disk(bus, slot)] },
  });
  // i440fx: hostdev0 took 00:02; a disk sits at 00:03, so the next free slot is 00:04.
  const pc = withDisk(live([hostdev('0000:06:10.2')], 'pc'), 0, 3);
  assert.deepEqual(planHotplug(pc, hostdev('0000:06:10.3')).guestAddress, {
    type: 'pci',
    domain: 0,
    bus: 0,
    slot: 4,
    function: 0,
  });
  // q35: the spare root port pci.2 holds a disk, so nothing is free.
  const q35 = withDisk(live([hostdev('0000:06:10.2')]), 2, 0);
  assert.throws(() => planHotplug(q35, hostdev('0000:06:10.3')), opInvalid(/no free PCI slot/));
  assert.throws(
    () =>
      planHotplug(live([hostdev('0000:06:10.2')]), {
        ...hostdev('0000:06:10.3'),
        guestAddress: { type: 'pci', domain: 0, bus: 0, slot: 0x1f, function: 4 },
      }),
    opInvalid(/0000:00:1f\.4: it is in use/),
  );
});
