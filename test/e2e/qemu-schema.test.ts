import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import type { ControllerDef, InterfaceDef } from '../../src/conf/domain/types.ts';
import { parseMac } from '../../src/conf/mac.ts';
import { parsePciAddress } from '../../src/conf/pci-address.ts';
import { type BusAliases, hostdevProps, nicProps, rootPortProps, serialProps } from '../../src/qemu/device-props.ts';
import { launchQemu } from '../../src/qemu/process.ts';
import { withRunDir } from './helpers/console.ts';
import { qemuEnv } from './helpers/env.ts';

/**
 * What passthru says to QEMU, checked against what this QEMU says it understands: every device
 * property the builder can emit exists on that device type (device-list-properties), and every
 * QMP command and event passthru uses is in the QAPI schema (query-qmp-schema), as libvirt checks
 * its monitor tests against a stored schema.
 */
const env = qemuEnv();

const COMMANDS = [
  'qmp_capabilities',
  'query-status',
  'cont',
  'quit',
  'device_add',
  'device_del',
  'qom-get',
  'query-pci',
  'migrate',
  'migrate-incoming',
  'migrate-set-capabilities',
  'query-migrate',
];
const EVENTS = ['DEVICE_DELETED', 'FAILOVER_NEGOTIATED', 'UNPLUG_PRIMARY', 'MIGRATION', 'RESUME', 'STOP', 'SHUTDOWN'];

// qdev's own keys, accepted by every device but not listed as its properties.
const GENERIC = new Set(['driver', 'id', 'bus']);

const at = { type: 'pci', domain: 0, bus: 1, slot: 0, function: 0, multifunction: true } as const;
const buses: BusAliases = new Map([
  [0, 'pcie.0'],
  [1, 'pci.1'],
]);
const everything = { alias: 'x0', guestAddress: at, bootOrder: 1, rom: { bar: true, file: '/r.rom' } } as const;

/** Each builder with every optional property it knows set. */
function allProps(): Record<string, string | number | boolean>[] {
  const iface: InterfaceDef = {
    type: 'user',
    model: 'virtio',
    mac: parseMac('52:54:00:00:00:01'),
    teaming: { type: 'persistent' },
    ...everything,
  };
  const port: ControllerDef = {
    type: 'pci',
    index: 1,
    model: 'pcie-root-port',
    alias: 'pci.1',
    target: { chassis: 1, port: 16, hotplug: true },
    address: { ...at, bus: 0 },
  };
  const teaming = { type: 'transient', persistent: 'ua-x' } as const;
  return [
    hostdevProps({ ...everything, teaming }, { kind: 'vfio', host: parsePciAddress('0000:06:10.2') }, buses),
    hostdevProps(
      { ...everything, teaming },
      { kind: 'emulated-nic', model: 'e1000e', mac: parseMac('52:54:00:00:00:02') },
      buses,
    ),
    nicProps(iface, buses),
    nicProps({ type: 'user', model: 'e1000e', mac: parseMac('52:54:00:00:00:03'), ...everything }, buses),
    rootPortProps(port, buses),
    serialProps('serial0', 0),
  ];
}

test('every property, QMP command and event passthru uses exists in this QEMU', {
  skip: env.skip,
  timeout: 60_000,
}, async () => {
  const binary = env.need();
  await withRunDir('pt-schema', async (dir) => {
    const p = { qmpSocket: join(dir, 'qmp.sock'), pidfile: join(dir, 'qemu.pid'), logFile: join(dir, 'qemu.log') };
    const argv = ['-machine', 'q35', '-accel', 'tcg', '-nodefaults', '-display', 'none', '-S', '-pidfile', p.pidfile];
    argv.push('-chardev', `socket,id=charmonitor,path=${p.qmpSocket},server=on,wait=off`);
    argv.push('-mon', 'chardev=charmonitor,id=monitor,mode=control');
    const vm = await launchQemu({ binary, argv, ...p });
    try {
      for (const props of allProps()) {
        const driver = String(props['driver']);
        const known = (await vm.qmp.execute('device-list-properties', { typename: driver })) as { name: string }[];
        const names = new Set(known.map((k) => k.name));
        const unknown = Object.keys(props).filter((k) => !GENERIC.has(k) && !names.has(k));
        assert.deepEqual(unknown, [], `${driver} has no such properties`);
      }
      const schema = (await vm.qmp.execute('query-qmp-schema')) as { 'meta-type': string; name: string }[];
      const commands = new Set(schema.filter((e) => e['meta-type'] === 'command').map((e) => e.name));
      const events = new Set(schema.filter((e) => e['meta-type'] === 'event').map((e) => e.name));
      assert.deepEqual(
        COMMANDS.filter((c) => !commands.has(c)),
        [],
        'commands missing from the schema',
      );
      assert.deepEqual(
        EVENTS.filter((e) => !events.has(e)),
        [],
        'events missing from the schema',
      );
      await vm.qmp.execute('quit');
      await vm.waitExit(10_000);
    } finally {
      if (vm.isAlive()) await vm.destroy(2_000);
    }
  });
});
