import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { formatDomainXml } from '../../../src/conf/domain/format.ts';
import { parseDomainXml } from '../../../src/conf/domain/parse.ts';
import type { DomainDef } from '../../../src/conf/domain/types.ts';
import type { FormatFlags } from '../../../src/conf/format-flags.ts';
import type { MacAddress } from '../../../src/conf/mac.ts';
import { formatNetworkXml } from '../../../src/conf/network/format.ts';
import { parseNetworkXml } from '../../../src/conf/network/parse.ts';
import type { NetworkDef } from '../../../src/conf/network/types.ts';
import type { Uuid } from '../../../src/conf/uuid.ts';
import type { VlanId } from '../../../src/conf/vlan.ts';

/** Property: for any definition in our model, format -> parse -> format gives the same text, under
 *  every format flag. Generated from the types, so it reaches every field the grammar knows. */

const opt = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.option(a, { nil: undefined });
/** Drops undefined fields so that objects satisfy exactOptionalPropertyTypes. */
const clean = <T extends object>(o: T): T =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;

const pci = fc.record({
  domain: fc.integer({ min: 0, max: 0xffff }),
  bus: fc.integer({ min: 0, max: 0xff }),
  slot: fc.integer({ min: 1, max: 0x1f }),
  function: fc.integer({ min: 0, max: 7 }),
});
const mac = fc
  .uint8Array({ minLength: 6, maxLength: 6 })
  .map(
    (b) =>
      [b[0] !== undefined ? b[0] & 0xfe : 0, ...b.slice(1)]
        .map((x) => x.toString(16).padStart(2, '0'))
        .join(':') as MacAddress,
  );
const uuid = fc.uuid().map((u) => u as Uuid);
const vlan = fc.record({
  trunk: fc.boolean(),
  tags: fc.array(
    fc
      .record({
        id: fc.integer({ min: 0, max: 4095 }).map((n) => n as VlanId),
        nativeMode: opt(fc.constantFrom('tagged' as const, 'untagged' as const)),
      })
      .map((o) => clean(o)),
    { minLength: 1, maxLength: 3 },
  ),
});
const vport = fc.oneof(
  fc.record({ type: fc.constant('802.1Qbh' as const), profileid: fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/) }),
  fc
    .record({
      type: fc.constant('802.1Qbg' as const),
      managerid: opt(fc.integer({ min: 0, max: 255 })),
      typeid: opt(fc.integer({ min: 0, max: 0xffffff })),
      typeidversion: opt(fc.integer({ min: 0, max: 255 })),
      instanceid: opt(uuid),
    })
    .map((o) => clean(o)),
  fc.record({ type: fc.constant('openvswitch' as const), interfaceid: uuid }),
);
const teaming = fc.oneof(
  fc.constant({ type: 'persistent' as const }),
  fc.record({ type: fc.constant('transient' as const), persistent: fc.stringMatching(/^ua-[a-z0-9]{1,8}$/) }),
);
const guestPci = fc
  .record({ pci, multifunction: opt(fc.boolean()) })
  .map(({ pci: p, multifunction }) => clean({ type: 'pci' as const, ...p, multifunction }));
const alias = fc.oneof(fc.stringMatching(/^ua-[a-z0-9]{1,8}$/), fc.stringMatching(/^(hostdev|net)[0-9]{1,2}$/));
const info = fc.record({
  guestAddress: opt(guestPci),
  alias: opt(alias),
  bootOrder: opt(fc.integer({ min: 1, max: 9 })),
  rom: opt(
    fc
      .record({ bar: opt(fc.boolean()), file: opt(fc.constantFrom('/rom.bin', "/a'b&c")), enabled: opt(fc.boolean()) })
      .map((o) => clean(o)),
  ),
});
const driver = opt(
  fc
    .record({
      name: opt(fc.constantFrom('vfio' as const, 'kvm' as const)),
      model: opt(fc.constantFrom('vfio-pci-igb')),
    })
    .map((o) => clean(o)),
);
const source = fc.record({ managed: fc.boolean(), address: pci, driver }).map((o) => clean(o));

const hostdev = fc
  .record({
    info,
    source,
    teaming: opt(teaming),
    assigned: opt(fc.boolean()),
    netdevs: opt(
      fc.array(
        fc.record({ port: fc.integer({ min: 1, max: 4 }), mac: opt(mac), vlan: opt(vlan) }).map((o) => clean(o)),
        {
          minLength: 1,
          maxLength: 2,
        },
      ),
    ),
  })
  .map(({ info: i, ...h }) => clean({ mode: 'subsystem' as const, type: 'pci' as const, ...clean(i), ...h }));

const common = fc.record({
  mac: opt(mac),
  model: opt(fc.constantFrom('virtio', 'e1000e', 'rtl8139')),
  vlan: opt(vlan),
  virtualport: opt(vport),
  teaming: opt(teaming),
  trustGuestRxFilters: opt(fc.boolean()),
  linkState: opt(fc.constantFrom('up' as const, 'down' as const)),
  mtu: opt(fc.integer({ min: 68, max: 9000 })),
});
/** [seed] `<standby>` of a hybrid interface; its source and target are live state (status XML). */
const standby = fc
  .record({
    alias: opt(alias),
    guestAddress: opt(guestPci),
    targetDev: opt(fc.constantFrom('macvtap0', 'macvtap7')),
    parent: opt(fc.constantFrom('enp6s0f0', 'eth0')),
  })
  .map((o) => clean(o));
const iface = fc
  .tuple(
    info,
    common,
    fc.oneof(
      source.map((s) => ({ type: 'hostdev' as const, source: s })),
      fc.record({ type: fc.constant('hostdev-hybrid' as const), source, standby: opt(standby) }).map((o) => clean(o)),
      fc.constant({ type: 'user' as const }),
      fc
        .record({ type: fc.constant('ethernet' as const), targetDev: opt(fc.constantFrom('tap0', 'vnet1')) })
        .map((o) => clean(o)),
      fc.record({ type: fc.constant('bridge' as const), bridge: fc.constantFrom('br0', 'virbr0') }),
      fc
        .record({
          type: fc.constant('direct' as const),
          dev: fc.constantFrom('eth0'),
          mode: opt(fc.constantFrom('vepa' as const, 'passthrough' as const)),
        })
        .map((o) => clean(o)),
      fc
        .record({
          type: fc.constant('network' as const),
          network: fc.constantFrom('pool', 'default'),
          portgroup: opt(fc.constantFrom('web')),
          actual: opt(
            fc
              .record({
                type: fc.constantFrom('hostdev' as const, 'hostdev-hybrid' as const),
                source,
                vlan: opt(vlan),
              })
              .map((o) => clean(o)),
          ),
          standby: opt(standby),
        })
        .map((o) => clean(o)),
    ),
  )
  .map(([i, c, t]) => ({ ...clean(i), ...clean(c), ...t }));

const controller = fc
  .record({
    index: fc.integer({ min: 1, max: 30 }),
    model: fc.constantFrom('pcie-root-port', 'pci-bridge'),
    modelName: opt(fc.constantFrom('pcie-root-port', 'ioh3420')),
    target: opt(
      fc
        .record({
          chassis: opt(fc.integer({ min: 0, max: 255 })),
          port: opt(fc.integer({ min: 0, max: 255 })),
          hotplug: opt(fc.boolean()),
        })
        .map((o) => clean(o)),
    ),
    address: opt(guestPci),
    alias: opt(fc.constantFrom('pci.1', 'ua-rp')),
  })
  .map((c) => clean({ type: 'pci' as const, ...c }));

const domain = fc
  .record({
    name: fc.stringMatching(/^[a-zA-Z][a-zA-Z0-9_.&<'-]{0,15}$/),
    uuid: opt(uuid),
    title: opt(fc.constantFrom('web & db', "it's <ok>")),
    memoryKiB: fc.integer({ min: 1, max: 2 ** 40 }),
    vcpus: fc.integer({ min: 1, max: 64 }),
    machine: opt(fc.constantFrom('q35', 'pc')),
    kernel: opt(fc.constantFrom('/boot/vmlinuz')),
    cmdline: opt(fc.constantFrom('console=ttyS0 a=b&c')),
    controllers: fc.uniqueArray(controller, { maxLength: 3, selector: (c) => c.index }),
    hostdevs: fc.array(hostdev, { maxLength: 3 }),
    interfaces: fc.array(iface, { maxLength: 3 }),
    serialPath: opt(fc.constantFrom('/var/log/x.log')),
  })
  .map((d) => ({
    name: d.name,
    ...clean({ uuid: d.uuid, title: d.title }),
    memoryKiB: d.memoryKiB,
    vcpus: d.vcpus,
    os: clean({ type: 'hvm' as const, machine: d.machine, kernel: d.kernel, cmdline: d.cmdline }),
    devices: {
      controllers: [{ type: 'pci' as const, index: 0, model: 'pcie-root' }, ...d.controllers],
      hostdevs: d.hostdevs,
      interfaces: d.interfaces,
      serials: d.serialPath === undefined ? [] : [{ type: 'file' as const, path: d.serialPath, targetPort: 0 }],
      consoles: [],
    },
  }));

const FLAGS: FormatFlags[] = [{ inactive: true }, { live: true }, { status: true }, { migratable: true }];
const RUNS = 6_000;

test(`domain format -> parse -> format is stable: ${RUNS} generated definitions x 4 flags`, () => {
  fc.assert(
    fc.property(domain, fc.constantFrom(...FLAGS), (def, flags) => {
      // The generators build plain objects field by field; the model's types are checked by tsc elsewhere.
      const text = formatDomainXml(def as unknown as DomainDef, flags);
      assert.equal(formatDomainXml(parseDomainXml(text), flags), text);
    }),
    { numRuns: RUNS },
  );
});

const network = fc
  .record({
    name: fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/),
    uuid: opt(uuid),
    mode: fc.constantFrom('hostdev' as const, 'hostdev-hybrid' as const, 'vepa' as const, 'passthrough' as const),
    managed: fc.boolean(),
    pf: opt(fc.constantFrom('enp6s0f0')),
    addresses: fc.array(pci, { maxLength: 3 }),
    vlan: opt(vlan),
    virtualport: opt(vport),
    portgroups: fc.array(
      fc
        .record({
          name: fc.stringMatching(/^[a-z]{1,6}$/),
          default: opt(fc.boolean()),
          vlan: opt(vlan),
          virtualport: opt(vport),
        })
        .map((o) => clean(o)),
      { maxLength: 2 },
    ),
  })
  .map((n) => {
    const hostdev = n.mode === 'hostdev' || n.mode === 'hostdev-hybrid';
    return clean({
      name: n.name,
      uuid: n.uuid,
      vlan: n.vlan,
      virtualport: n.virtualport,
      portgroups: n.portgroups,
      forward: clean({
        mode: n.mode,
        managed: hostdev ? n.managed : undefined,
        pfs: n.pf === undefined ? [] : [{ dev: n.pf }],
        interfaces: hostdev ? [] : [{ dev: 'eth1' }],
        addresses: n.addresses,
        selectors: [],
      }),
    });
  });

test('network format -> parse -> format is stable: 4000 generated definitions', () => {
  fc.assert(
    fc.property(network, (def) => {
      const text = formatNetworkXml(def as unknown as NetworkDef);
      assert.equal(formatNetworkXml(parseNetworkXml(text)), text);
    }),
    { numRuns: 4000 },
  );
});
