import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { ControllerDef, DomainDef, GuestAddress, HostdevDef, InterfaceDef } from '../../src/conf/domain/types.ts';
import { PassthruError } from '../../src/conf/error.ts';
import { parseMac } from '../../src/conf/mac.ts';
import { parsePciAddress } from '../../src/conf/pci-address.ts';
import { busAliases, rootPortProps } from '../../src/qemu/device-props.ts';
import { prepareLiveDef } from '../../src/qemu/live-def.ts';

const hostdev = (bdf: string, extra: Partial<HostdevDef> = {}): HostdevDef => ({
  mode: 'subsystem',
  type: 'pci',
  source: { managed: true, address: parsePciAddress(bdf) },
  ...extra,
});
const ifaceHostdev = (bdf: string, mac: string, extra: Partial<InterfaceDef> = {}): InterfaceDef =>
  ({
    type: 'hostdev',
    mac: parseMac(mac),
    source: { managed: true, address: parsePciAddress(bdf) },
    ...extra,
  }) as InterfaceDef;
const user = (mac: string, extra: Partial<InterfaceDef> = {}): InterfaceDef =>
  ({ type: 'user', model: 'virtio', mac: parseMac(mac), ...extra }) as InterfaceDef;
const pci = (bus: number, slot: number, fn = 0, multifunction?: boolean): GuestAddress =>
  multifunction === undefined
    ? { type: 'pci', domain: 0, bus, slot, function: fn }
    : { type: 'pci', domain: 0, bus, slot, function: fn, multifunction };

function domain(devices: Partial<DomainDef['devices']>, machine = 'q35'): DomainDef {
  return {
    name: 'd',
    memoryKiB: 262144,
    vcpus: 1,
    os: { type: 'hvm', machine },
    devices: { controllers: [], hostdevs: [], interfaces: [], serials: [], consoles: [], ...devices },
  };
}

const rootPorts = (def: DomainDef): ControllerDef[] =>
  def.devices.controllers.filter((c) => c.model === 'pcie-root-port');

const rejects = (fn: () => unknown, pattern: RegExp, code = 'XML_INVALID'): void => {
  assert.throws(fn, (e: unknown) => e instanceof PassthruError && e.code === code && pattern.test(e.message));
};

test('one hostdev on q35: pcie-root, a root port of its own at 00:01.0 and a spare for hot-plug', () => {
  const live = prepareLiveDef(domain({ hostdevs: [hostdev('0000:06:10.2')] }));
  assert.deepEqual(live.devices.controllers, [
    { type: 'pci', index: 0, model: 'pcie-root', alias: 'pcie.0' },
    { type: 'pci', index: 1, model: 'pcie-root-port', address: pci(0, 1, 0, true), alias: 'pci.1' },
    { type: 'pci', index: 2, model: 'pcie-root-port', address: pci(0, 1, 1), alias: 'pci.2' },
  ]);
  assert.equal(live.devices.hostdevs[0]?.alias, 'hostdev0');
  assert.deepEqual(live.devices.hostdevs[0]?.guestAddress, pci(1, 0));
});

test("libvirt's order: QEMU-backed interfaces, then interface hostdevs, then <hostdev>; shared hostdevN numbering", () => {
  const live = prepareLiveDef(
    domain({
      hostdevs: [hostdev('0000:06:10.4')],
      interfaces: [ifaceHostdev('0000:06:10.2', '52:54:00:00:00:01'), user('52:54:00:00:00:02')],
    }),
  );
  const [vf, nic] = live.devices.interfaces;
  assert.equal(nic?.alias, 'net0');
  assert.deepEqual(nic.guestAddress, pci(1, 0));
  assert.equal(vf?.alias, 'hostdev0');
  assert.deepEqual(vf.guestAddress, pci(2, 0));
  assert.equal(live.devices.hostdevs[0]?.alias, 'hostdev1');
  assert.deepEqual(live.devices.hostdevs[0]?.guestAddress, pci(3, 0));
  assert.equal(rootPorts(live).length, 4);
});

test('root ports pack eight to a slot; function 0 of each shared slot says multifunction', () => {
  const hostdevs = Array.from({ length: 9 }, (_, i) => hostdev(`0000:06:10.${i % 8}`.replace('10.', `1${i >> 3}.`)));
  const live = prepareLiveDef(domain({ hostdevs }));
  const addrs = rootPorts(live).map((c) => c.address);
  assert.equal(addrs.length, 10);
  assert.deepEqual(addrs[0], pci(0, 1, 0, true));
  assert.deepEqual(addrs[7], pci(0, 1, 7));
  assert.deepEqual(addrs[8], pci(0, 2, 0, true));
  assert.deepEqual(addrs[9], pci(0, 2, 1));
  // Each root port's port number follows from where it was packed (slot << 3 | function).
  assert.deepEqual(
    rootPorts(live).map((c) => rootPortProps(c, busAliases(live))['port']),
    [0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11],
  );
  assert.deepEqual(
    live.devices.hostdevs.map((h) => (h.guestAddress?.type === 'pci' ? h.guestAddress.bus : -1)),
    [1, 2, 3, 4, 5, 6, 7, 8, 9],
  );
});

test('explicit guest addresses are kept; the planner goes around them', () => {
  const live = prepareLiveDef(
    domain({
      hostdevs: [hostdev('0000:06:10.2', { guestAddress: pci(0, 1) }), hostdev('0000:06:10.3')],
    }),
  );
  assert.deepEqual(live.devices.hostdevs[0]?.guestAddress, pci(0, 1));
  // 00:01 is taken by the integrated endpoint, so the root ports start at slot 2.
  assert.deepEqual(rootPorts(live)[0]?.address, pci(0, 2, 0, true));
  assert.deepEqual(live.devices.hostdevs[1]?.guestAddress, pci(1, 0));
});

test('a video without an address keeps its traditional slot: root ports then start at 00:02', () => {
  const video = {
    kind: 'video',
    xml: { kind: 'element', name: 'video', attrs: [], children: [] },
  } as unknown as NonNullable<DomainDef['devices']['others']>[number];
  const live = prepareLiveDef(domain({ hostdevs: [hostdev('0000:06:10.2')], others: [video] }));
  assert.deepEqual(rootPorts(live)[0]?.address, pci(0, 2, 0, true));
});

test('an explicit address on a bus nobody defined adds the root ports up to it', () => {
  const live = prepareLiveDef(domain({ hostdevs: [hostdev('0000:06:10.2', { guestAddress: pci(3, 0) })] }));
  assert.deepEqual(
    rootPorts(live).map((c) => c.index),
    [1, 2, 3],
  );
  assert.deepEqual(live.devices.hostdevs[0]?.guestAddress, pci(3, 0));
});

test('clashes and impossible addresses are errors naming the devices', () => {
  rejects(
    () =>
      prepareLiveDef(
        domain({
          hostdevs: [
            hostdev('0000:06:10.2', { guestAddress: pci(0, 5) }),
            hostdev('0000:06:10.3', { guestAddress: pci(0, 5) }),
          ],
        }),
      ),
    /0000:00:05\.0 of hostdev1 is already in use by hostdev0/,
  );
  rejects(
    () => prepareLiveDef(domain({ hostdevs: [hostdev('0000:06:10.2', { guestAddress: pci(0, 0x1f) })] })),
    /0000:00:1f\.0 of hostdev0 is already in use by the ICH9/,
  );
  rejects(
    () => prepareLiveDef(domain({ hostdevs: [hostdev('0000:06:10.2', { guestAddress: pci(1, 3) })] })),
    /pcie-root-port has only slot 0/,
  );
  rejects(() => prepareLiveDef(domain({}, 'virt')), /machine type 'virt'/, 'CONFIG_UNSUPPORTED');
  assert.throws(
    () => prepareLiveDef({ ...domain({}), os: { type: 'hvm', machine: 'virt', line: 5 } }),
    (e: unknown) => e instanceof PassthruError && e.line === 5,
    'the error points at <os>',
  );
});

test('unassigned hostdevs get an alias but no address and no root port', () => {
  const live = prepareLiveDef(
    domain({
      hostdevs: [
        hostdev('0000:06:12.1'),
        hostdev('0000:06:12.2', { guestAddress: { type: 'unassigned' } }),
        hostdev('0000:06:12.3'),
      ],
    }),
  );
  assert.deepEqual(
    live.devices.hostdevs.map((h) => [h.alias, h.guestAddress]),
    [
      ['hostdev0', pci(1, 0)],
      ['hostdev1', { type: 'unassigned' }],
      ['hostdev2', pci(2, 0)],
    ],
  );
  assert.equal(rootPorts(live).length, 3);
});

test('user aliases are kept and new ones continue after the highest index in use', () => {
  const live = prepareLiveDef(
    domain({
      interfaces: [
        user('52:54:00:00:00:01', { alias: 'ua-backup0' }),
        user('52:54:00:00:00:02', { alias: 'net3' }),
        user('52:54:00:00:00:03'),
      ],
    }),
  );
  assert.deepEqual(
    live.devices.interfaces.map((i) => i.alias),
    ['ua-backup0', 'net3', 'net4'],
  );
});

test('i440fx (machine pc): endpoints on pci.0 from slot 2, no root ports', () => {
  const live = prepareLiveDef(
    domain({ interfaces: [user('52:54:00:00:00:01')], hostdevs: [hostdev('0000:06:12.5')] }, 'pc'),
  );
  assert.deepEqual(live.devices.controllers, [{ type: 'pci', index: 0, model: 'pci-root', alias: 'pci.0' }]);
  assert.deepEqual(live.devices.interfaces[0]?.guestAddress, pci(0, 2));
  assert.deepEqual(live.devices.hostdevs[0]?.guestAddress, pci(0, 3));
});

test('serial and console: serialN by port; a console on a serial port shows that serial alias', () => {
  const live = prepareLiveDef(
    domain({
      serials: [{ type: 'file', path: '/tmp/s.log', targetPort: 0 }],
      consoles: [
        { type: 'file', path: '/tmp/s.log', targetType: 'serial', targetPort: 0 },
        { type: 'pty', targetType: 'virtio' },
      ],
    }),
  );
  assert.equal(live.devices.serials[0]?.alias, 'serial0');
  assert.deepEqual(
    live.devices.consoles.map((c) => c.alias),
    ['serial0', 'console1'],
  );
});

// Invariants over arbitrary device mixes: every device that wants an address gets a unique one
// on a bus that exists, unassigned ones get none, aliases are unique, a spare root port remains,
// and preparing the live definition again changes nothing.
test('property: unique addresses on existing buses, a spare root port, idempotent', () => {
  const device = fc.oneof(
    fc.constant<'user'>('user'),
    fc.constant<'iface'>('iface'),
    fc.constant<'hostdev'>('hostdev'),
    fc.constant<'unassigned'>('unassigned'),
  );
  fc.assert(
    fc.property(fc.array(device, { maxLength: 20 }), fc.constantFrom('q35', 'pc'), (kinds, machine) => {
      const interfaces: InterfaceDef[] = [];
      const hostdevs: HostdevDef[] = [];
      kinds.forEach((k, i) => {
        const bdf = `0000:07:${(i >> 3).toString(16).padStart(2, '0')}.${i & 7}`;
        const mac = `52:54:00:00:01:${i.toString(16).padStart(2, '0')}`;
        if (k === 'user') interfaces.push(user(mac));
        else if (k === 'iface') interfaces.push(ifaceHostdev(bdf, mac));
        else if (k === 'hostdev') hostdevs.push(hostdev(bdf));
        else hostdevs.push(hostdev(bdf, { guestAddress: { type: 'unassigned' } }));
      });
      const live = prepareLiveDef(domain({ interfaces, hostdevs }, machine));
      assert.deepEqual(prepareLiveDef(live), live);

      const buses = new Set(live.devices.controllers.map((c) => c.index));
      const seen = new Set<string>();
      const devices = [
        ...live.devices.interfaces,
        ...live.devices.hostdevs,
        ...live.devices.controllers.map((c) => ({ ...c, guestAddress: c.address })),
      ];
      for (const d of devices) {
        const a = d.guestAddress;
        if (a?.type !== 'pci') continue;
        assert.ok(buses.has(a.bus), `bus ${a.bus} exists`);
        const key = `${a.bus}:${a.slot}.${a.function}`;
        assert.ok(!seen.has(key), `address ${key} used once`);
        seen.add(key);
      }
      const endpoints = [...live.devices.interfaces, ...live.devices.hostdevs];
      for (const d of endpoints) assert.ok(d.guestAddress !== undefined, `${d.alias ?? '?'} has an address`);
      assert.deepEqual(
        live.devices.hostdevs.map((h) => h.guestAddress?.type === 'unassigned'),
        kinds.filter((k) => k === 'hostdev' || k === 'unassigned').map((k) => k === 'unassigned'),
        'unassigned hostdevs stay without a guest PCI address',
      );
      const aliases = endpoints.map((d) => d.alias);
      assert.equal(new Set(aliases).size, aliases.length);
      if (machine === 'q35') {
        const used = new Set(endpoints.flatMap((d) => (d.guestAddress?.type === 'pci' ? [d.guestAddress.bus] : [])));
        assert.ok(
          rootPorts(live).some((c) => !used.has(c.index)),
          'a free root port is left for hot-plug',
        );
      }
    }),
  );
});

test("the chipset's built-in controllers at libvirt's addresses are accepted; other devices there are not", () => {
  const ctl = (type: ControllerDef['type'], slot: number, fn: number, line: number): ControllerDef => ({
    type,
    index: 0,
    address: pci(0, slot, fn),
    line,
  });
  const pc = prepareLiveDef(
    domain({ controllers: [ctl('ide', 1, 1, 10), ctl('usb', 1, 2, 11)], hostdevs: [hostdev('0000:06:10.2')] }, 'pc'),
  );
  assert.deepEqual(pc.devices.hostdevs[0]?.guestAddress, pci(0, 2));
  const q35 = prepareLiveDef(domain({ controllers: [ctl('sata', 0x1f, 2, 10)], hostdevs: [hostdev('0000:06:10.2')] }));
  assert.deepEqual(q35.devices.hostdevs[0]?.guestAddress, pci(1, 0));
  assert.throws(
    () => prepareLiveDef(domain({ controllers: [ctl('sata', 1, 2, 12)] }, 'pc')),
    (e: unknown) =>
      e instanceof PassthruError &&
      e.code === 'XML_INVALID' &&
      e.line === 12 &&
      e.message.includes('0000:00:01.2 of sata controller 0 (line 12) is already in use by the PIIX3 functions'),
  );
  assert.throws(
    () => prepareLiveDef(domain({ hostdevs: [hostdev('0000:06:10.2', { guestAddress: pci(0, 0x1f, 2), line: 14 })] })),
    (e: unknown) => e instanceof PassthruError && e.line === 14 && e.message.includes('by the ICH9'),
  );
});
