import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parsePciAddress } from '../../src/conf/pci-address.ts';
import { bindToStub } from '../../src/host/bind.ts';
import { functionOfPath, type Inventory, readInventory, refreshInventory } from '../../src/host/inventory.ts';
import { openSimHost } from '../../src/host/sim/kernel.ts';
import type { Kernel } from '../../src/host/types.ts';
import { diffInventory, type HostChange, parseUevent, watchHost } from '../../src/host/watch.ts';
import { simHost } from './helpers.ts';

/** Collects changes (a burst may come in several batches) until `want` holds for them. */
function nextChange(want: (c: readonly HostChange[]) => boolean): {
  onChange: (c: readonly HostChange[], inv: Inventory) => void;
  seen: Promise<readonly HostChange[]>;
} {
  let resolve: (c: readonly HostChange[]) => void = () => undefined;
  const seen = new Promise<readonly HostChange[]>((r) => (resolve = r));
  const all: HostChange[] = [];
  return {
    onChange: (c) => {
      all.push(...c);
      if (want(all)) resolve(all);
    },
    seen,
  };
}

test('the inventory follows the sim host: a rebind in another process is seen, with what changed', async () => {
  const { dir, kernel, done } = await simHost('intel-82576');
  const fieldsOf = (c: readonly HostChange[]): string[] =>
    [...new Set(c.filter((x) => x.name === '0000:01:10.2').flatMap((x) => x.fields ?? []))].sort();
  const { onChange, seen } = nextChange((c) => fieldsOf(c).length === 3);
  const w = await watchHost(kernel, onChange, { debounceMs: 20 });
  try {
    const other = await openSimHost(dir); // as if another process: its own SimKernel
    await bindToStub(other, parsePciAddress('0000:01:10.2'));
    const changes = await seen;
    assert.ok(changes.filter((x) => x.name === '0000:01:10.2').every((x) => x.kind === 'changed'));
    assert.deepEqual(fieldsOf(changes), ['driver', 'driverOverride', 'netdevs']);
    assert.equal(w.current().devices.find((d) => d.name === '0000:01:10.2')?.driver, 'vfio-pci');
  } finally {
    w.stop();
    done();
  }
});

test('VFs appearing and vanishing are added/removed events; the PF changes numVfs', async () => {
  const { kernel, done } = await simHost('intel-82576');
  const removed = nextChange((c) => c.filter((x) => x.kind === 'removed').length === 7);
  const w = await watchHost(kernel, removed.onChange, { debounceMs: 20 });
  try {
    await kernel.writeSysfs('/sys/bus/pci/devices/0000:01:00.0/sriov_numvfs', '0');
    const changes = await removed.seen;
    assert.ok(changes.some((x) => x.name === '0000:01:00.0' && x.fields?.includes('numVfs')));
  } finally {
    w.stop();
  }
  const added = nextChange((c) => c.filter((x) => x.kind === 'added').length === 3);
  const w2 = await watchHost(kernel, added.onChange, { debounceMs: 20 });
  try {
    await kernel.writeSysfs('/sys/bus/pci/devices/0000:01:00.1/sriov_numvfs', '3');
    const changes = await added.seen;
    assert.deepEqual(
      changes.filter((x) => x.kind === 'added').map((x) => x.name),
      ['0000:01:10.1', '0000:01:10.3', '0000:01:10.5'],
    );
  } finally {
    w2.stop();
    done();
  }
});

test('kernel uevents are parsed; udev re-broadcasts are not taken for them', () => {
  const msg = Buffer.from(
    'bind@/devices/pci0000:00/0000:00:01.0/0000:01:10.2\0ACTION=bind\0DEVPATH=/devices/pci0000:00/0000:00:01.0/0000:01:10.2\0SUBSYSTEM=pci\0DRIVER=vfio-pci\0PCI_SLOT_NAME=0000:01:10.2\0SEQNUM=2121\0',
  );
  assert.deepEqual(parseUevent(msg), {
    action: 'bind',
    devpath: '/devices/pci0000:00/0000:00:01.0/0000:01:10.2',
    subsystem: 'pci',
    vars: {
      ACTION: 'bind',
      DEVPATH: '/devices/pci0000:00/0000:00:01.0/0000:01:10.2',
      SUBSYSTEM: 'pci',
      DRIVER: 'vfio-pci',
      PCI_SLOT_NAME: '0000:01:10.2',
      SEQNUM: '2121',
    },
  });
  assert.equal(parseUevent(Buffer.from('libudev\0\xfe\xed\xca\xfe')), undefined);
});

test('a read that fails because the host changed under it is retried: the change is not lost', async () => {
  const { dir, kernel, done } = await simHost('intel-82576');
  // The watcher's first re-read after the change fails, as when a VF vanishes mid-read; the
  // change's own signal was spent on that read, so only a retry can report it.
  let failNext = false;
  const sysfs = kernel.sysfs;
  const flaky: Kernel = {
    backend: kernel.backend,
    writeSysfs: (p, v) => kernel.writeSysfs(p, v),
    vfTable: (pf) => kernel.vfTable(pf),
    setVf: (pf, vf, st) => kernel.setVf(pf, vf, st),
    setVfPort: (pf, vf, p, r) => kernel.setVfPort(pf, vf, p, r),
    vfPortStatus: (pf, vf) => kernel.vfPortStatus(pf, vf),
    present: (a) => kernel.present(a),
    sysfs: {
      root: sysfs.root,
      read: (p) => sysfs.read(p),
      readBytes: (p) => sysfs.readBytes(p),
      readLink: (p) => sysfs.readLink(p),
      exists: (p) => sysfs.exists(p),
      list: async (p) => {
        if (failNext) {
          failNext = false;
          throw Object.assign(new Error(`ENOENT: ${p} vanished`), { code: 'ENOENT' });
        }
        return sysfs.list(p);
      },
    },
  };
  const removed = nextChange((c) => c.filter((x) => x.kind === 'removed').length === 7);
  const w = await watchHost(flaky, removed.onChange, { debounceMs: 20 });
  try {
    failNext = true;
    const other = await openSimHost(dir);
    await other.writeSysfs('/sys/bus/pci/devices/0000:01:00.0/sriov_numvfs', '0');
    const changes = await removed.seen;
    assert.equal(changes.filter((x) => x.kind === 'removed').length, 7);
    assert.equal(failNext, false, 'the failing read did happen');
  } finally {
    w.stop();
    done();
  }
});

test('sync: the state a caller just made is read before it returns, so a change right after is a diff from it', async () => {
  // The nodedev-events stall: the daemon set 8 VFs and replied; another process set 0 within
  // the debounce; the watcher's two reads both showed 0 VFs and nothing was reported. A long
  // debounce makes that window certain here; sync() must close it.
  const { dir, kernel, done } = await simHost('intel-82576');
  const all: HostChange[] = [];
  const w = await watchHost(kernel, (c) => all.push(...c), { debounceMs: 60_000, pollMs: 60_000 });
  const pf = '/sys/bus/pci/devices/0000:01:00.0/sriov_numvfs';
  try {
    await kernel.writeSysfs(pf, '0');
    await w.sync();
    assert.equal(all.filter((x) => x.kind === 'removed').length, 7, 'reported before sync() returned');
    await kernel.writeSysfs(pf, '2');
    await w.sync();
    assert.equal(all.filter((x) => x.kind === 'added').length, 2);
    const other = await openSimHost(dir);
    await other.writeSysfs(pf, '0');
    await w.sync();
    const added = all.filter((x) => x.kind === 'added').map((x) => x.name);
    assert.deepEqual(
      all
        .filter((x) => x.kind === 'removed')
        .slice(7)
        .map((x) => x.name),
      added,
    );
  } finally {
    w.stop();
    done();
  }
});

test('the sim names what each operation touched, and the watcher re-reads only that: the same inventory as a full read', async () => {
  const { dir, kernel, done } = await simHost('intel-82576');
  const w = await watchHost(kernel, () => undefined, { pollMs: 3_600_000 });
  try {
    const other = await openSimHost(dir);
    await bindToStub(other, parsePciAddress('0000:01:10.2'));
    await w.sync();
    // What the next diff starts from is exactly what a full read of the host says now.
    assert.deepEqual(w.current(), await readInventory(kernel.sysfs));
    await kernel.writeSysfs('/sys/bus/pci/devices/0000:01:00.0/sriov_numvfs', '0');
    await w.sync();
    assert.deepEqual(w.current(), await readInventory(kernel.sysfs));
    await kernel.writeSysfs('/sys/bus/pci/devices/0000:01:00.0/sriov_numvfs', '2');
    await w.sync();
    assert.deepEqual(w.current(), await readInventory(kernel.sysfs));
    assert.equal(w.current().devices.filter((d) => d.physfn?.pf.bus === 1 && d.physfn.pf.function === 0).length, 2);
  } finally {
    w.stop();
    done();
  }
});

test('refreshInventory: only the named functions are read again; a PF brings its VFs; a gone function is dropped', async () => {
  const { kernel, done } = await simHost('intel-82576');
  try {
    const before = await readInventory(kernel.sysfs);
    const vf = '0000:01:10.2';
    const same = await refreshInventory(kernel.sysfs, before, [vf]);
    assert.deepEqual(same, before);
    // Untouched devices are the same objects, so a diff passes over them.
    assert.equal(same.devices.filter((d, i) => d !== before.devices[i]).length, 1);
    assert.deepEqual(diffInventory(before, same), []);
    await kernel.writeSysfs('/sys/bus/pci/devices/0000:01:00.0/sriov_numvfs', '0');
    const after = await refreshInventory(kernel.sysfs, before, ['0000:01:00.0']);
    assert.deepEqual(after, await readInventory(kernel.sysfs));
    assert.equal(diffInventory(before, after).filter((c) => c.kind === 'removed').length, 7);
    assert.equal(functionOfPath('/devices/pci0000:00/0000:00:01.0/0000:01:10.2/net/eth3'), vf);
    assert.equal(functionOfPath('/devices/virtual/net/lo'), undefined);
  } finally {
    done();
  }
});

test('fresh(): a change made a moment ago in another process is in the answer, and only it was read again', async () => {
  const { dir, kernel, done } = await simHost('intel-82576');
  // No poll during the test; the change log's inotify may or may not have fired by the time
  // fresh() asks: either way the answer must hold the change.
  const w = await watchHost(kernel, () => undefined, { debounceMs: 60_000, pollMs: 60_000 });
  try {
    const before = w.current();
    const other = await openSimHost(dir);
    await bindToStub(other, parsePciAddress('0000:01:10.2'));
    const now = await w.fresh();
    const byName = new Map(before.devices.map((d) => [d.name, d]));
    assert.equal(now.devices.find((d) => d.name === '0000:01:10.2')?.driver, 'vfio-pci');
    // Functions the change did not touch are the very objects of the last read: not read again.
    const untouched = now.devices.filter((d) => d.name !== '0000:01:10.2' && byName.get(d.name) === d);
    assert.equal(untouched.length, now.devices.length - 1);
    assert.equal(await w.fresh(), now, 'nothing changed since: the same inventory');
  } finally {
    w.stop();
    done();
  }
});
