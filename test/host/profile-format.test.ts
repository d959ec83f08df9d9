import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PassthruError } from '../../src/conf/error.ts';
import { listProfiles, loadProfile, parseProfile } from '../../src/host/sim/profile.ts';

const invalid = (raw: unknown, words: RegExp): void => {
  assert.throws(
    () => parseProfile(raw),
    (e: unknown) => e instanceof PassthruError && e.code === 'INVALID_ARG' && words.test(e.message),
  );
};

const pf = {
  slot: 0,
  function: 0,
  kind: 'endpoint',
  vendor: '0x8086',
  device: '0x1572',
  class: '0x020000',
  driver: 'i40e',
  netdevs: [{ name: 'p0', mac: '3c:fd:fe:00:00:00' }],
  sriov: { totalVfs: 4, numVfs: 2, offset: 16, stride: 1, vfDevice: '0x154c', vfDriver: 'iavf', vfNetdev: 'p0v{vf}' },
};
const base = { name: 'x', description: 'y', devices: [pf] };

test('every built-in profile parses', () => {
  for (const name of listProfiles()) assert.equal(loadProfile(name).name, name);
});

test('a bad profile is refused naming the device and the field', () => {
  assert.equal(parseProfile(base).devices[0]?.sriov?.vfDevice, 0x154c);
  invalid({ ...base, name: '' }, /'name' must be a non-empty string/);
  invalid({ ...base, devices: [{ ...pf, slot: 32 }] }, /'slot' must be an integer from 0 to 31/);
  invalid({ ...base, devices: [{ ...pf, kind: 'bridge' }] }, /device 00\.0: 'kind' must be one of/);
  invalid({ ...base, devices: [{ ...pf, vendor: '8086' }] }, /'vendor' must be a hex string/);
  invalid({ ...base, devices: [{ ...pf, link: { speed: 3, width: 4 } }] }, /PCIe link speed/);
  invalid(
    { ...base, devices: [{ ...pf, netdevs: [{ name: 'p0', mac: 'nope' }] }] },
    /device 00\.0 netdev: invalid MAC address 'nope'/,
  );
  invalid(
    { ...base, devices: [{ ...pf, sriov: { ...pf.sriov, numVfs: 5 } }] },
    /'numVfs' must be an integer from 0 to 4/,
  );
  invalid({ ...base, devices: [{ ...pf, kind: 'root-port' }] }, /a root-port needs 'secondaryBus'/);
  invalid([], /must be an object/);
  invalid(
    { ...base, devices: [{ ...pf, netdevs: [{ name: 'p0', mac: '3c:fd:fe:00:00:00', defaultRoute: 'yes' }] }] },
    /'defaultRoute' must be one of ipv4, ipv6, both/,
  );
  invalid(
    { ...base, devices: [{ ...pf, disks: [{ name: 'sda', dev: '8' }] }] },
    /device 00\.0 disk: 'dev' must be a block device's major:minor/,
  );
  invalid(
    {
      ...base,
      devices: [
        { ...pf, disks: [{ name: 'sda', dev: '8:0', partitions: [{ name: 'sda1', dev: '8:1', mount: 'srv' }] }] },
      ],
    },
    /disk partition: 'mount' must be an absolute path/,
  );
});
