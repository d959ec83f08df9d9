import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parsePciAddress } from '../../src/conf/pci-address.ts';
import { bindToStub } from '../../src/host/bind.ts';
import { readPciDevice } from '../../src/host/inventory.ts';
import { resetDevice } from '../../src/host/reset.ts';
import { vfioVariantDriver } from '../../src/host/variant.ts';
import { hostError, simHost } from './helpers.ts';

test('nodedev-reset: FLR devices reset, vfio-bound ones are left to vfio, bridges refused', async () => {
  const { kernel, done } = await simHost();
  try {
    const vf = parsePciAddress('0000:06:02.0');
    assert.deepEqual(await resetDevice(kernel, vf), { reset: true, method: 'flr' });
    await bindToStub(kernel, vf);
    assert.equal((await resetDevice(kernel, vf)).reset, false);
    await assert.rejects(resetDevice(kernel, parsePciAddress('0000:00:01.0')), hostError('OPERATION_INVALID'));
  } finally {
    done();
  }
  const gpu = await simHost('gpu-with-audio');
  try {
    await assert.rejects(
      resetDevice(gpu.kernel, parsePciAddress('0000:01:00.0')),
      (e: unknown) =>
        hostError('HOST_FAILED', 'ENOTTY')(e) && String(e).includes('no FLR, PM reset or bus reset available'),
    );
  } finally {
    gpu.done();
  }
});

test('vfio variant driver: modalias prefixed with vfio_ looked up in modules.alias', async () => {
  const { dir, kernel, done } = await simHost('mellanox-cx5');
  try {
    mkdirSync(join(dir, 'proc/sys/kernel'), { recursive: true });
    writeFileSync(join(dir, 'proc/sys/kernel/osrelease'), '6.1.0-56-amd64\n');
    mkdirSync(join(dir, 'lib/modules/6.1.0-56-amd64'), { recursive: true });
    writeFileSync(
      join(dir, 'lib/modules/6.1.0-56-amd64/modules.alias'),
      [
        'alias pci:v000015B3d00001018sv*sd*bc*sc*i* mlx5_core',
        'alias vfio_pci:v000015B3d00001018sv*sd*bc*sc*i* mlx5_vfio_pci',
        'alias vfio_pci:v00008086d00001889sv*sd*bc*sc*i* ice_vfio_pci',
        '',
      ].join('\n'),
    );
    const vf = await readPciDevice(kernel.sysfs, parsePciAddress('0000:3b:00.2'));
    assert.equal(await vfioVariantDriver(kernel.sysfs, vf.modalias), 'mlx5_vfio_pci');
    const pf = await readPciDevice(kernel.sysfs, parsePciAddress('0000:3b:00.0'));
    assert.equal(await vfioVariantDriver(kernel.sysfs, pf.modalias), undefined);
  } finally {
    done();
  }
});
