import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatPciAddress, parsePciAddress } from '../../src/conf/pci-address.ts';
import { bindToStub, currentDriver, rebindHostDriver } from '../../src/host/bind.ts';
import { setVfCount } from '../../src/host/sriov.ts';
import { hostError, simHost } from './helpers.ts';

const PF = parsePciAddress('0000:01:00.0');
const noWait = { sleep: () => Promise.resolve(), timeoutMs: 0 };

test('nodedev-sriov: 7 -> 3 goes through 0; the VFs come up with their driver', async () => {
  const { kernel, done } = await simHost('intel-82576');
  try {
    const r = await setVfCount(kernel, PF, 3, noWait);
    assert.deepEqual([r.before, r.after, r.settled], [7, 3, true]);
    assert.deepEqual(r.vfs.map(formatPciAddress), ['0000:01:10.0', '0000:01:10.2', '0000:01:10.4']);
    assert.equal(await currentDriver(kernel.sysfs, parsePciAddress('0000:01:10.4')), 'igbvf');
    // Same count: nothing to do.
    const again = await setVfCount(kernel, PF, 3, noWait);
    assert.equal(again.after, 3);
  } finally {
    done();
  }
});

test('nodedev-sriov: refused while a VF is held, and out of range, changing nothing', async () => {
  const { kernel, done } = await simHost('intel-82576');
  try {
    await assert.rejects(
      setVfCount(kernel, PF, 2, {
        ...noWait,
        holder: (vf) => (formatPciAddress(vf) === '0000:01:10.6' ? 'web1' : undefined),
      }),
      (e: unknown) => hostError('DEVICE_IN_USE')(e) && String(e).includes('VF 0000:01:10.6 is in use by domain web1'),
    );
    await assert.rejects(setVfCount(kernel, PF, 8, noWait), hostError('INVALID_ARG'));
    await assert.rejects(setVfCount(kernel, parsePciAddress('0000:00:01.0'), 1, noWait), hostError('INVALID_ARG'));
    assert.equal(await kernel.sysfs.read('/sys/bus/pci/devices/0000:01:00.0/sriov_numvfs'), '7');
  } finally {
    done();
  }
});

test('nodedev-sriov: autoprobe off gives driverless VFs, ready for vfio-pci', async () => {
  const { kernel, done } = await simHost('intel-82576');
  try {
    const r = await setVfCount(kernel, PF, 2, { ...noWait, autoprobe: false });
    assert.equal(r.settled, true);
    for (const vf of r.vfs) assert.equal(await currentDriver(kernel.sysfs, vf), undefined);
    assert.equal(await kernel.sysfs.read('/sys/bus/pci/devices/0000:01:00.0/sriov_drivers_autoprobe'), '0');
  } finally {
    done();
  }
});

test('rebindHostDriver with the previous driver restores it even when autoprobe is off', async () => {
  const { kernel, done } = await simHost('intel-82576');
  try {
    const r = await setVfCount(kernel, PF, 2, { ...noWait, autoprobe: false });
    const vf = r.vfs[0] ?? PF;
    await bindToStub(kernel, vf);
    await rebindHostDriver(kernel, vf);
    assert.equal(await currentDriver(kernel.sysfs, vf), undefined, 'a plain reprobe cannot bind it');
    await bindToStub(kernel, vf);
    await rebindHostDriver(kernel, vf, 'igbvf');
    assert.equal(await currentDriver(kernel.sysfs, vf), 'igbvf');
    assert.equal(await kernel.sysfs.read(`/sys/bus/pci/devices/${formatPciAddress(vf)}/driver_override`), '(null)');
    // A driver that is not loaded: the plain way.
    await bindToStub(kernel, vf);
    await rebindHostDriver(kernel, vf, 'no_such_driver');
    assert.equal(await currentDriver(kernel.sysfs, vf), undefined);
  } finally {
    done();
  }
});
