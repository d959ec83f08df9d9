import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseMac } from '../../src/conf/mac.ts';
import type { DevicePresentation } from '../../src/host/types.ts';
import { prepareLiveDef } from '../../src/qemu/live-def.ts';
import { waitForGuestNic, withRunDir } from './helpers/console.ts';
import { e2eEnv } from './helpers/env.ts';
import { guestDomain, pciHostdev, startGuest } from './helpers/guest-domain.ts';

const env = e2eEnv();
const MAC = parseMac('52:54:00:12:34:56');

interface PciDevice {
  bus: number;
  slot: number;
  function: number;
  qdev_id: string;
  pci_bridge?: { bus: { number: number }; devices: PciDevice[] };
}

test('a host device presented as an emulated e1000e reaches the guest with its MAC at the planned address', {
  skip: env.skip,
  timeout: 120_000,
}, async (t) => {
  const { qemu, guest } = env.need();
  await withRunDir('pt-qemu', async (dir) => {
    const live = prepareLiveDef(guestDomain('e2e-qemu-guest', guest, { hostdevs: [pciHostdev('0000:06:10.2')] }));
    const hostdev = live.devices.hostdevs[0];
    assert.equal(hostdev?.alias, 'hostdev0');
    assert.deepEqual(hostdev.guestAddress, { type: 'pci', domain: 0, bus: 1, slot: 0, function: 0 });
    const port = live.devices.controllers.find((c) => c.index === 1);
    assert.equal(port?.alias, 'pci.1');
    assert.deepEqual(port.address, { type: 'pci', domain: 0, bus: 0, slot: 1, function: 0, multifunction: true });

    const presentation: DevicePresentation = { kind: 'emulated-nic', model: 'e1000e', mac: MAC };
    const t0 = performance.now();
    const { vm, paths } = await startGuest({
      qemu,
      dir,
      live,
      hostDevices: new Map([['hostdev0', presentation]]),
      name: 'QEMU of domain e2e-qemu-guest',
    });
    try {
      // -S: nothing runs until cont, so the device is checked before the guest sees it.
      const status = (await vm.qmp.execute('query-status')) as { status: string };
      assert.equal(status.status, 'prelaunch');
      await vm.qmp.execute('cont');

      const nic = await waitForGuestNic(
        paths.consoleLog,
        (n) => n.mac === MAC,
        60_000,
        () => (vm.isAlive() ? undefined : 'QEMU exited'),
      );
      const seconds = (performance.now() - t0) / 1000;
      t.diagnostic(`launch -> MAC on the guest console: ${seconds.toFixed(2)} s (guest kernel ${guest.kernelVersion})`);
      assert.equal(nic.driver, 'e1000e');
      // The root port pci.1 is the guest's first secondary bus: the device is 0000:01:00.0.
      assert.equal(nic.pci, '0000:01:00.0');

      const buses = (await vm.qmp.execute('query-pci')) as { bus: number; devices: PciDevice[] }[];
      const rootPort = buses[0]?.devices.find((d) => d.qdev_id === 'pci.1');
      assert.ok(rootPort, 'root port pci.1 on pcie.0');
      assert.deepEqual([rootPort.bus, rootPort.slot, rootPort.function], [0, 1, 0]);
      const dev = rootPort.pci_bridge?.devices.find((d) => d.qdev_id === 'hostdev0');
      assert.ok(dev, 'hostdev0 behind pci.1');
      assert.deepEqual([dev.slot, dev.function], [0, 0]);

      assert.equal(await vm.qmp.execute('qom-get', { path: '/machine/peripheral/hostdev0', property: 'mac' }), MAC);
      assert.equal(await vm.qmp.execute('qom-get', { path: '/machine/peripheral/hostdev0', property: 'romfile' }), '');

      await vm.qmp.execute('quit');
      const exit = await vm.waitExit(20_000);
      assert.equal(exit.code, 0);
    } finally {
      if (vm.isAlive()) await vm.destroy(5_000);
    }
  });
});
