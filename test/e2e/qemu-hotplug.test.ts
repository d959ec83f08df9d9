import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseMac } from '../../src/conf/mac.ts';
import { busAliases, hostdevProps } from '../../src/qemu/device-props.ts';
import { hotplugDevice, planHotplug, unplugDevice } from '../../src/qemu/hotplug.ts';
import { prepareLiveDef } from '../../src/qemu/live-def.ts';
import { parseGuestNics, waitForGuestNic, withRunDir } from './helpers/console.ts';
import { e2eEnv } from './helpers/env.ts';
import { guestDomain, pciHostdev, startGuest } from './helpers/guest-domain.ts';

const env = e2eEnv();
const MAC_A = parseMac('52:54:00:00:0a:01');
const MAC_B = parseMac('52:54:00:00:0b:02');

/** The NICs of one complete scan the guest printed after `offset` in its console log. */
async function nextFullScan(consoleLog: string, offset: number, timeoutMs: number): Promise<string[]> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const text = (await readFile(consoleLog, 'utf8')).slice(offset);
    const lines = text.split('\n');
    const scans = lines.flatMap((l, i) => (l.startsWith('passthru-guest: scan ') ? [i] : []));
    const [first, second] = scans;
    if (first !== undefined && second !== undefined) {
      return parseGuestNics(lines.slice(first + 1, second).join('\n')).map((n) => n.mac);
    }
    if (performance.now() > deadline) throw new Error(`no complete scan in ${consoleLog} within ${timeoutMs} ms`);
    await sleep(100);
  }
}

test('hot-plug onto the spare root port reaches the guest; unplug waits for the guest to let go', {
  skip: env.skip,
  timeout: 180_000,
}, async (t) => {
  const { qemu, guest } = env.need();
  await withRunDir('pt-hotplug', async (dir) => {
    const live = prepareLiveDef(guestDomain('e2e-qemu-hotplug', guest, { hostdevs: [pciHostdev('0000:06:10.2')] }));
    const { vm, paths } = await startGuest({
      qemu,
      dir,
      live,
      hostDevices: new Map([['hostdev0', { kind: 'emulated-nic', model: 'e1000e', mac: MAC_A }]]),
      name: 'QEMU of domain e2e-qemu-hotplug',
      startPaused: false,
    });
    try {
      const alive = (): string | undefined => (vm.isAlive() ? undefined : 'QEMU exited');
      await waitForGuestNic(paths.consoleLog, (n) => n.mac === MAC_A, 60_000, alive);

      const planned = planHotplug(live, pciHostdev('0000:06:10.3'));
      assert.equal(planned.alias, 'hostdev1');
      const props = hostdevProps(planned, { kind: 'emulated-nic', model: 'e1000e', mac: MAC_B }, busAliases(live));
      const t0 = performance.now();
      await hotplugDevice(vm.qmp, props);
      const nic = await waitForGuestNic(paths.consoleLog, (n) => n.mac === MAC_B, 60_000, alive);
      t.diagnostic(`device_add -> MAC on the guest console: ${((performance.now() - t0) / 1000).toFixed(2)} s`);
      // pci.2 is the guest's second secondary bus.
      assert.equal(nic.pci, '0000:02:00.0');
      assert.equal(nic.driver, 'e1000e');

      const t1 = performance.now();
      await unplugDevice(vm.qmp, 'hostdev1', 60_000);
      t.diagnostic(`device_del -> DEVICE_DELETED: ${((performance.now() - t1) / 1000).toFixed(2)} s`);
      const offset = (await readFile(paths.consoleLog, 'utf8')).length;
      const after = await nextFullScan(paths.consoleLog, offset, 30_000);
      assert.deepEqual(after, [MAC_A]);
      await assert.rejects(vm.qmp.execute('qom-get', { path: '/machine/peripheral/hostdev1', property: 'mac' }));

      await vm.qmp.execute('quit');
      await vm.waitExit(20_000);
    } finally {
      if (vm.isAlive()) await vm.destroy(5_000);
    }
  });
});
