import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parsePciAddress } from '../../src/conf/pci-address.ts';
import { bindToStub } from '../../src/host/bind.ts';
import { simHost } from './helpers.ts';

test('sim presentation: a NIC function on vfio keeps its factory MAC; a GPU and its audio function are edu', async () => {
  const bcm = await simHost('broadcom-bcm5719');
  try {
    const f1 = parsePciAddress('0000:02:00.1');
    await bindToStub(bcm.kernel, f1, 'vfio-pci');
    assert.deepEqual(await bcm.kernel.present(f1), { kind: 'emulated-nic', model: 'e1000e', mac: '70:10:6f:c1:00:02' });
  } finally {
    bcm.done();
  }
  const gpu = await simHost('gpu-with-audio');
  try {
    for (const f of ['0000:01:00.0', '0000:01:00.1']) {
      assert.deepEqual(await gpu.kernel.present(parsePciAddress(f)), { kind: 'emulated-device', model: 'edu' });
    }
  } finally {
    gpu.done();
  }
});
