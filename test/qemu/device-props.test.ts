import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ControllerDef, InterfaceDef } from '../../src/conf/domain/types.ts';
import { PassthruError } from '../../src/conf/error.ts';
import { parseMac } from '../../src/conf/mac.ts';
import { parsePciAddress } from '../../src/conf/pci-address.ts';
import {
  type BusAliases,
  formatDeviceJson,
  formatDeviceKeyval,
  hostdevProps,
  nicProps,
  rootPortProps,
} from '../../src/qemu/device-props.ts';

const pci0: BusAliases = new Map([[0, 'pci.0']]);
const q35: BusAliases = new Map([
  [0, 'pcie.0'],
  [1, 'pci.1'],
]);
const vfio = (bdf: string) => ({ kind: 'vfio', host: parsePciAddress(bdf) }) as const;
const at = (bus: number, slot: number, fn = 0) => ({ type: 'pci', domain: 0, bus, slot, function: fn }) as const;

// Expected lines are copied from libvirt 9.0.0's own test data
// (test/data/libvirt-9.0.0/domain/xml2argv/*.args): same keys, same order.
test('vfio-pci properties in libvirt order (pci-rom.args, net-hostdev-bootorder.args, net-virtio-teaming.args)', () => {
  assert.equal(
    formatDeviceKeyval(
      hostdevProps({ alias: 'hostdev0', guestAddress: at(0, 4), rom: { bar: false } }, vfio('0000:06:12.5'), pci0),
    ),
    'vfio-pci,host=0000:06:12.5,id=hostdev0,bus=pci.0,addr=0x4,rombar=0',
  );
  assert.equal(
    formatDeviceKeyval(
      hostdevProps(
        { alias: 'hostdev1', guestAddress: at(0, 5), rom: { bar: true, file: '/etc/fake/bootrom.bin' } },
        vfio('0000:06:12.6'),
        pci0,
      ),
    ),
    'vfio-pci,host=0000:06:12.6,id=hostdev1,bus=pci.0,addr=0x5,rombar=1,romfile=/etc/fake/bootrom.bin',
  );
  assert.equal(
    formatDeviceKeyval(
      hostdevProps({ alias: 'hostdev0', guestAddress: at(0, 2), bootOrder: 1 }, vfio('0000:03:07.1'), pci0),
    ),
    'vfio-pci,host=0000:03:07.1,id=hostdev0,bootindex=1,bus=pci.0,addr=0x2',
  );
  assert.equal(
    formatDeviceKeyval(
      hostdevProps(
        { alias: 'hostdev0', guestAddress: at(0, 4), teaming: { type: 'transient', persistent: 'ua-backup0' } },
        vfio('0000:03:07.1'),
        pci0,
      ),
    ),
    'vfio-pci,host=0000:03:07.1,id=hostdev0,failover_pair_id=ua-backup0,bus=pci.0,addr=0x4',
  );
  // The modern JSON form (hostdev-pci-address.x86_64-latest.args).
  assert.equal(
    formatDeviceJson(hostdevProps({ alias: 'hostdev0', guestAddress: at(0, 2) }, vfio('0000:06:12.5'), pci0)),
    '{"driver":"vfio-pci","host":"0000:06:12.5","id":"hostdev0","bus":"pci.0","addr":"0x2"}',
  );
});

test('virtio-net and pcie-root-port properties (net-virtio-teaming.args, q35-pcie-autoadd, pci-rom-disabled)', () => {
  const backup: InterfaceDef = {
    type: 'user',
    model: 'virtio',
    mac: parseMac('00:11:22:33:44:55'),
    teaming: { type: 'persistent' },
    alias: 'ua-backup0',
    guestAddress: at(0, 2),
  };
  assert.equal(
    formatDeviceKeyval(nicProps(backup, pci0)),
    'virtio-net-pci,failover=on,netdev=hostua-backup0,id=ua-backup0,mac=00:11:22:33:44:55,bus=pci.0,addr=0x2',
  );
  const noRom: InterfaceDef = {
    type: 'user',
    mac: parseMac('52:54:00:24:a5:9f'),
    alias: 'net0',
    guestAddress: at(0, 2),
    rom: { enabled: false },
  };
  assert.equal(
    formatDeviceKeyval(nicProps(noRom, pci0)),
    'virtio-net-pci,netdev=hostnet0,id=net0,mac=52:54:00:24:a5:9f,bus=pci.0,addr=0x2,romfile=',
  );
  const port = (index: number, fn: number, multifunction?: boolean): ControllerDef => ({
    type: 'pci',
    index,
    model: 'pcie-root-port',
    alias: `pci.${index}`,
    address: { ...at(0, 2, fn), ...(multifunction === undefined ? {} : { multifunction }) },
  });
  assert.equal(
    formatDeviceJson(rootPortProps(port(1, 0, true), q35)),
    '{"driver":"pcie-root-port","port":16,"chassis":1,"id":"pci.1","bus":"pcie.0","multifunction":true,"addr":"0x2"}',
  );
  assert.equal(
    formatDeviceKeyval(rootPortProps(port(2, 1), q35)),
    'pcie-root-port,port=17,chassis=2,id=pci.2,bus=pcie.0,addr=0x2.0x1',
  );
});

test('the sim presentation: e1000e with the programmed MAC and an empty romfile, whatever <rom> says', () => {
  const props = hostdevProps(
    {
      alias: 'hostdev0',
      guestAddress: at(1, 0),
      rom: { file: '/x.rom' },
      teaming: { type: 'transient', persistent: 'ua-net' },
    },
    { kind: 'emulated-nic', model: 'e1000e', mac: parseMac('52:54:00:AA:bb:01') },
    q35,
  );
  assert.deepEqual(props, {
    driver: 'e1000e',
    id: 'hostdev0',
    mac: '52:54:00:aa:bb:01',
    failover_pair_id: 'ua-net',
    bus: 'pci.1',
    addr: '0x0',
    romfile: '',
  });
});

test('the sim presentation of a function that is no NIC: an edu device at its guest address', () => {
  const props = hostdevProps(
    { alias: 'hostdev3', guestAddress: at(1, 0) },
    { kind: 'emulated-device', model: 'edu' },
    q35,
  );
  assert.deepEqual(props, { driver: 'edu', id: 'hostdev3', bus: 'pci.1', addr: '0x0' });
});

test('key=value escaping doubles commas; a missing alias or bus is a typed error', () => {
  assert.equal(formatDeviceKeyval({ driver: 'x', romfile: '/a,b' }), 'x,romfile=/a,,b');
  assert.throws(
    () => hostdevProps({ guestAddress: at(0, 2) }, vfio('0000:06:12.5'), pci0),
    (e: unknown) => e instanceof PassthruError && e.code === 'INTERNAL',
  );
  assert.throws(
    () => hostdevProps({ alias: 'hostdev0', guestAddress: at(7, 0) }, vfio('0000:06:12.5'), q35),
    (e: unknown) => e instanceof PassthruError && e.message.includes('no PCI controller with index 7'),
  );
});

test('a persistent teaming member must be virtio', () => {
  const e1000e: InterfaceDef = { type: 'user', model: 'e1000e', alias: 'ua-b', teaming: { type: 'persistent' } };
  assert.throws(
    () => nicProps(e1000e, pci0),
    (e: unknown) =>
      e instanceof PassthruError && e.code === 'XML_INVALID' && e.message.includes("needs <model type='virtio'/>"),
  );
});
