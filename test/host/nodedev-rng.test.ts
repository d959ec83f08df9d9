import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatNodeDevice } from '../../src/conf/nodedev/format.ts';
import { readInventory } from '../../src/host/inventory.ts';
import { nodeDevices } from '../../src/host/nodedev.ts';
import { listProfiles } from '../../src/host/sim/profile.ts';
import { rngProblem } from '../conf/conformance/libvirt.ts';
import { simHost } from './helpers.ts';

/** Every node device we write for every profile is valid against libvirt 9.0.0's nodedev.rng. */
for (const profile of listProfiles().filter((p) => !p.startsWith('scale-'))) {
  test(`node devices of ${profile} validate against libvirt's nodedev.rng`, async () => {
    const { kernel, done } = await simHost(profile);
    try {
      const defs = nodeDevices(await readInventory(kernel.sysfs));
      assert.ok(defs.length > 0);
      for (const d of defs) {
        const xml = formatNodeDevice(d);
        assert.equal(rngProblem('nodedev.rng', xml), undefined, `${d.name}:\n${xml}`);
      }
    } finally {
      done();
    }
  });
}
