import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseMac } from '../../src/conf/mac.ts';
import { parsePciAddress } from '../../src/conf/pci-address.ts';
import { bindToStub, currentDriver, netdevMac, rebindHostDriver, vfOf } from '../../src/host/bind.ts';
import { createSimHost } from '../../src/host/sim/create.ts';
import { injectFault } from '../../src/host/sim/faults.ts';
import { openSimHost } from '../../src/host/sim/kernel.ts';
import { listProfiles } from '../../src/host/sim/profile.ts';
import { hostError, simHost } from './helpers.ts';

const VF0 = parsePciAddress('0000:06:02.0');
const VF3 = parsePciAddress('0000:06:02.3');

test('bindToStub: override + unbind + probe; the VF netdev goes and /dev/vfio/N appears', async () => {
  const { dir, kernel, done } = await simHost();
  try {
    const sysfs = kernel.sysfs;
    assert.equal(await currentDriver(sysfs, VF0), 'iavf');
    assert.ok(await sysfs.exists('/sys/class/net/enp6s0f0v0'));
    const group = (await sysfs.readLink('/sys/bus/pci/devices/0000:06:02.0/iommu_group'))?.split('/').pop();
    assert.ok(group !== undefined && !existsSync(join(dir, 'dev/vfio', group)));

    const r = await bindToStub(kernel, VF0);
    assert.deepEqual(r, { changed: true, previousDriver: 'iavf' });
    assert.equal(await currentDriver(sysfs, VF0), 'vfio-pci');
    assert.equal(await sysfs.read('/sys/bus/pci/devices/0000:06:02.0/driver_override'), 'vfio-pci');
    assert.equal(await sysfs.exists('/sys/class/net/enp6s0f0v0'), false);
    assert.deepEqual(await sysfs.list('/sys/bus/pci/devices/0000:06:02.0/net'), []);
    assert.ok(existsSync(join(dir, 'dev/vfio', group)));
    assert.deepEqual(await sysfs.list('/sys/bus/pci/drivers/iavf').then((l) => l.includes('0000:06:02.0')), false);

    // Already on the stub: nothing to do, and release must not rebind.
    assert.deepEqual(await bindToStub(kernel, VF0), { changed: false, previousDriver: 'vfio-pci' });

    await rebindHostDriver(kernel, VF0);
    assert.equal(await currentDriver(sysfs, VF0), 'iavf');
    assert.equal(await sysfs.read('/sys/bus/pci/devices/0000:06:02.0/driver_override'), '(null)');
    assert.ok(await sysfs.exists('/sys/class/net/enp6s0f0v0'));
    assert.ok(!existsSync(join(dir, 'dev/vfio', group)));
  } finally {
    done();
  }
});

test('rebinding the VF driver brings the netdev back with the admin MAC, else a fresh MAC', async () => {
  const { kernel, done } = await simHost();
  try {
    const sysfs = kernel.sysfs;
    const before = await netdevMac(sysfs, 'enp6s0f0v3');
    await bindToStub(kernel, VF3);
    await rebindHostDriver(kernel, VF3);
    const fresh = await netdevMac(sysfs, 'enp6s0f0v3');
    assert.ok(fresh !== undefined && fresh !== before, 'a VF driver without admin MAC picks a new one');

    await bindToStub(kernel, VF3);
    await kernel.setVf('enp6s0f0', 3, { mac: parseMac('52:54:00:00:00:03') });
    await rebindHostDriver(kernel, VF3);
    assert.equal(await netdevMac(sysfs, 'enp6s0f0v3'), '52:54:00:00:00:03');
  } finally {
    done();
  }
});

test('i40e programs an admin MAC on a bound VF asynchronously: the netdev shows it a moment later', async () => {
  const { kernel, done } = await simHost();
  try {
    const before = await netdevMac(kernel.sysfs, 'enp6s0f1v2');
    await kernel.setVf('enp6s0f1', 2, { mac: parseMac('52:54:00:aa:00:02') });
    // The VF table has it at once; the VF's own netdev not yet, but after the next operation.
    assert.equal(await netdevMac(kernel.sysfs, 'enp6s0f1v2'), before);
    assert.equal((await kernel.vfTable('enp6s0f1')).find((r) => r.vf === 2)?.mac, '52:54:00:aa:00:02');
    assert.equal(await netdevMac(kernel.sysfs, 'enp6s0f1v2'), '52:54:00:aa:00:02');
    assert.notEqual(before, '52:54:00:aa:00:02');
  } finally {
    done();
  }
});

test('kernel rules: bind/unbind/probe errors carry the errno', async () => {
  const { kernel, done } = await simHost();
  try {
    // Unbinding from a driver the device is not bound to.
    await assert.rejects(
      kernel.writeSysfs('/sys/bus/pci/drivers/i40e/unbind', '0000:06:02.0'),
      hostError('HOST_FAILED', 'ENODEV'),
    );
    // bind while bound (to a driver that matches: else it is ENODEV first).
    await assert.rejects(
      kernel.writeSysfs('/sys/bus/pci/drivers/iavf/bind', '0000:06:02.0'),
      hostError('HOST_FAILED', 'EBUSY'),
    );
    await kernel.writeSysfs('/sys/bus/pci/devices/0000:06:02.0/driver/unbind', '0000:06:02.0');
    // vfio-pci has no id table: without an override it does not match.
    await assert.rejects(
      kernel.writeSysfs('/sys/bus/pci/drivers/vfio-pci/bind', '0000:06:02.0'),
      hostError('HOST_FAILED', 'ENODEV'),
    );
    await kernel.writeSysfs('/sys/bus/pci/devices/0000:06:02.0/driver_override', 'vfio-pci');
    await kernel.writeSysfs('/sys/bus/pci/drivers/vfio-pci/bind', '0000:06:02.0');
    assert.equal(await currentDriver(kernel.sysfs, VF0), 'vfio-pci');
    // Probe of an unknown device, write to a read-only attribute, a missing file.
    await assert.rejects(
      kernel.writeSysfs('/sys/bus/pci/drivers_probe', '0000:99:00.0'),
      hostError('HOST_FAILED', 'ENODEV'),
    );
    await assert.rejects(
      kernel.writeSysfs('/sys/bus/pci/devices/0000:06:00.0/vendor', '0x1234'),
      hostError('HOST_FAILED', 'EACCES'),
    );
    await assert.rejects(
      kernel.writeSysfs('/sys/bus/pci/devices/0000:06:00.0/nonsense', '1'),
      hostError('HOST_FAILED', 'ENOENT'),
    );
    // driver_override "none" opts out of binding: the probe leaves it unbound.
    await kernel.writeSysfs('/sys/bus/pci/devices/0000:06:02.0/driver/unbind', '0000:06:02.0');
    await kernel.writeSysfs('/sys/bus/pci/devices/0000:06:02.0/driver_override', 'none');
    await kernel.writeSysfs('/sys/bus/pci/drivers_probe', '0000:06:02.0');
    assert.equal(await currentDriver(kernel.sysfs, VF0), undefined);
  } finally {
    done();
  }
});

test('sriov_numvfs: ERANGE, EBUSY non-zero to non-zero, through 0, ENOENT without PF driver', async () => {
  const { kernel, done } = await simHost();
  try {
    const pf = '/sys/bus/pci/devices/0000:06:00.0';
    await assert.rejects(kernel.writeSysfs(`${pf}/sriov_numvfs`, '65'), hostError('HOST_FAILED', 'ERANGE'));
    await assert.rejects(kernel.writeSysfs(`${pf}/sriov_numvfs`, '12'), hostError('HOST_FAILED', 'EBUSY'));
    await kernel.writeSysfs(`${pf}/sriov_numvfs`, '8'); // same value: no-op
    await kernel.writeSysfs(`${pf}/sriov_numvfs`, '0');
    assert.equal(await kernel.sysfs.read(`${pf}/sriov_numvfs`), '0');
    assert.equal(await kernel.sysfs.exists('/sys/bus/pci/devices/0000:06:02.0'), false);
    assert.deepEqual(await kernel.vfTable('enp6s0f0'), []);
    await kernel.writeSysfs(`${pf}/sriov_numvfs`, '12');
    assert.equal((await kernel.vfTable('enp6s0f0')).length, 12);
    assert.ok(await kernel.sysfs.exists('/sys/class/net/enp6s0f0v11'));
    // Unbinding the PF driver destroys its VFs; then sriov_numvfs cannot be written.
    await kernel.writeSysfs(`${pf}/driver/unbind`, '0000:06:00.0');
    assert.equal(await kernel.sysfs.exists('/sys/bus/pci/devices/0000:06:02.0'), false);
    await assert.rejects(kernel.writeSysfs(`${pf}/sriov_numvfs`, '2'), hostError('HOST_FAILED', 'ENOENT'));
  } finally {
    done();
  }
});

test('sriov_drivers_autoprobe=0: new VFs stay driverless and bind only to their override', async () => {
  const { kernel, done } = await simHost();
  try {
    const pf = '/sys/bus/pci/devices/0000:06:00.1';
    await kernel.writeSysfs(`${pf}/sriov_numvfs`, '0');
    await kernel.writeSysfs(`${pf}/sriov_drivers_autoprobe`, '0');
    await kernel.writeSysfs(`${pf}/sriov_numvfs`, '2');
    const vf = (await kernel.sysfs.readLink(`${pf}/virtfn1`))?.split('/').pop() ?? '';
    assert.equal(await currentDriver(kernel.sysfs, parsePciAddress(vf)), undefined);
    await kernel.writeSysfs('/sys/bus/pci/drivers_probe', vf);
    assert.equal(await currentDriver(kernel.sysfs, parsePciAddress(vf)), undefined);
    assert.deepEqual(await bindToStub(kernel, parsePciAddress(vf)), { changed: true });
    assert.equal(await currentDriver(kernel.sysfs, parsePciAddress(vf)), 'vfio-pci');
  } finally {
    done();
  }
});

test('VF table: set/get through the PF, per-driver refusals, persisted across SimKernel instances', async () => {
  const { dir, kernel, done } = await simHost();
  try {
    await kernel.setVf('enp6s0f0', 5, {
      mac: parseMac('52:54:00:00:00:05'),
      vlan: { id: 42, qos: 3 },
      spoofchk: false,
      trust: true,
      linkState: 'enable',
      rate: { minTx: 0, maxTx: 1000 },
    });
    const other = await openSimHost(dir);
    const row = (await other.vfTable('enp6s0f0')).find((r) => r.vf === 5);
    assert.deepEqual(row, {
      vf: 5,
      mac: '52:54:00:00:00:05',
      vlan: 42,
      qos: 3,
      spoofchk: false,
      trust: true,
      linkState: 'enable',
      minTxRate: 0,
      maxTxRate: 1000,
    });
    // The untouched rows and the other PF's table stay as they were.
    assert.equal((await other.vfTable('enp6s0f0')).find((r) => r.vf === 4)?.mac, '00:00:00:00:00:00');
    assert.ok((await other.vfTable('enp6s0f1')).every((r) => r.vlan === 0));
    // i40e: no 802.1ad, no min rate; an out-of-range VF index is EINVAL.
    await assert.rejects(
      other.setVf('enp6s0f0', 1, { vlan: { id: 5, proto: '802.1ad' } }),
      hostError('HOST_FAILED', 'EPROTONOSUPPORT'),
    );
    await assert.rejects(
      other.setVf('enp6s0f0', 1, { rate: { minTx: 10, maxTx: 100 } }),
      hostError('HOST_FAILED', 'EINVAL'),
    );
    await assert.rejects(other.setVf('enp6s0f0', 8, { trust: true }), hostError('HOST_FAILED', 'EINVAL'));
    await assert.rejects(
      other.setVf('enp6s0f0', 1, { mac: parseMac('01:00:5e:00:00:01') }),
      hostError('HOST_FAILED', 'EINVAL'),
    );
    await assert.rejects(other.vfTable('nosuch0'), hostError('NO_DEVICE'));
    // The first instance sees the second's writes.
    await other.setVf('enp6s0f0', 5, { vlan: { id: 0 } });
    assert.equal((await kernel.vfTable('enp6s0f0')).find((r) => r.vf === 5)?.vlan, 0);
  } finally {
    done();
  }
});

test('present: a VF is an emulated e1000e with its admin MAC, or its netdev MAC when none', async () => {
  const { kernel, done } = await simHost();
  try {
    const hw = await netdevMac(kernel.sysfs, 'enp6s0f0v0');
    assert.deepEqual(await kernel.present(VF0), { kind: 'emulated-nic', model: 'e1000e', mac: hw });
    await bindToStub(kernel, VF0);
    assert.deepEqual(await kernel.present(VF0), { kind: 'emulated-nic', model: 'e1000e', mac: hw });
    await kernel.setVf('enp6s0f0', 0, { mac: parseMac('52:54:00:00:00:01') });
    assert.deepEqual(await kernel.present(VF0), { kind: 'emulated-nic', model: 'e1000e', mac: '52:54:00:00:00:01' });
    await assert.rejects(kernel.present(parsePciAddress('0000:00:01.0')), hostError('CONFIG_UNSUPPORTED'));
    await assert.rejects(kernel.present(parsePciAddress('0000:42:00.0')), hostError('NO_DEVICE'));
  } finally {
    done();
  }
});

test('vfOf: PF, index and PF netdev; undefined for a PF', async () => {
  const { kernel, done } = await simHost();
  try {
    assert.deepEqual(await vfOf(kernel.sysfs, parsePciAddress('0000:06:0a.3')), {
      pf: parsePciAddress('0000:06:00.1'),
      pfNetdev: 'enp6s0f1',
      index: 3,
    });
    assert.equal(await vfOf(kernel.sysfs, parsePciAddress('0000:06:00.0')), undefined);
  } finally {
    done();
  }
});

test('a failed step of bindToStub leaves the device on its own driver, no override behind', async () => {
  const { dir, kernel, done } = await simHost();
  try {
    await injectFault(dir, { op: 'writeSysfs', match: 'drivers_probe', nth: 1, errno: 'EIO' });
    await assert.rejects(
      bindToStub(kernel, VF0),
      (e: unknown) => hostError('HOST_FAILED', 'EIO')(e) && String(e).includes('probe'),
    );
    assert.equal(await currentDriver(kernel.sysfs, VF0), 'iavf');
    assert.equal(await kernel.sysfs.read('/sys/bus/pci/devices/0000:06:02.0/driver_override'), '(null)');
  } finally {
    done();
  }
});

test('createSimHost refuses a non-empty directory and an unknown profile, naming the profiles', async () => {
  const base = mkdtempSync(join(tmpdir(), 'passthru-create-'));
  try {
    mkdirSync(join(base, 'full'));
    writeFileSync(join(base, 'full', 'x'), '');
    await assert.rejects(createSimHost(join(base, 'full'), 'intel-x710-2port'), /not empty/);
    await assert.rejects(createSimHost(join(base, 'new'), 'no-such-card'), (e: unknown) => {
      return (
        hostError('INVALID_ARG')(e) &&
        String(e).includes('no-such-card') &&
        (e as { hint: string }).hint.includes('intel-x710-2port')
      );
    });
    assert.ok(listProfiles().includes('intel-x710-2port'));
    await assert.rejects(openSimHost(join(base, 'full')), hostError('INVALID_ARG'));
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});

test("two SimKernels on one host (two processes) never lose each other's VF updates", async () => {
  const { dir, kernel, done } = await simHost();
  try {
    const other = await openSimHost(dir);
    const writes: Promise<void>[] = [];
    for (let vf = 0; vf < 8; vf++) {
      writes.push(kernel.setVf('enp6s0f0', vf, { vlan: { id: 100 + vf } }));
      writes.push(other.setVf('enp6s0f0', vf, { trust: true }));
      writes.push(other.vfTable('enp6s0f0').then(() => undefined));
    }
    await Promise.all(writes);
    const rows = await kernel.vfTable('enp6s0f0');
    assert.deepEqual(
      rows.map((r) => [r.vlan, r.trust]),
      Array.from({ length: 8 }, (_, vf) => [100 + vf, true]),
    );
  } finally {
    done();
  }
});

test('fault injection: the Nth matching operation fails with the chosen errno, or is slow and then succeeds', async () => {
  const { dir, kernel, done } = await simHost();
  try {
    await injectFault(dir, { op: 'setVf', match: 'enp6s0f0 vf 1', nth: 2, errno: 'EBUSY' });
    await injectFault(dir, { op: 'vfTable', nth: 1, delayMs: 1 });
    await kernel.setVf('enp6s0f0', 1, { trust: true }); // 1st match
    await kernel.setVf('enp6s0f0', 2, { trust: true }); // does not match
    await assert.rejects(kernel.setVf('enp6s0f0', 1, { trust: false }), hostError('HOST_FAILED', 'EBUSY'));
    await kernel.setVf('enp6s0f0', 1, { trust: false }); // the rule fired once and is gone
    const rows = await kernel.vfTable('enp6s0f0'); // slow, then answers
    assert.deepEqual([rows[1]?.trust, rows[2]?.trust], [false, true]);
  } finally {
    done();
  }
});

test('a lock left by a killed process is taken over (dead pid, or no pid after a second)', async () => {
  const { dir, kernel, done } = await simHost();
  try {
    const lock = join(dir, 'sim', 'lock');
    mkdirSync(lock);
    writeFileSync(join(lock, 'pid'), '999999999'); // no such process
    assert.equal((await kernel.vfTable('enp6s0f0')).length, 8);
    mkdirSync(lock);
    utimesSync(lock, new Date(Date.now() - 5000), new Date(Date.now() - 5000));
    assert.equal((await kernel.vfTable('enp6s0f0')).length, 8);
  } finally {
    done();
  }
});
