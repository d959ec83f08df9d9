import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseMac } from '../../src/conf/mac.ts';
import { prepareLiveDef } from '../../src/qemu/live-def.ts';
import { waitForGuestNic, withRunDir } from './helpers/console.ts';
import { e2eEnv } from './helpers/env.ts';
import { failoverPair, guestDomain, startGuest } from './helpers/guest-domain.ts';

/**
 * <teaming>: a virtio-net standby (failover=on) and a VF primary (failover_pair_id), here the
 * sim's e1000e. QEMU keeps the primary hidden until the guest's virtio_net negotiates
 * VIRTIO_NET_F_STANDBY, says FAILOVER_NEGOTIATED and plugs it; the guest's net_failover then
 * enslaves both under one master with the shared MAC.
 */
const env = e2eEnv();
const MAC = parseMac('52:54:00:fa:11:01');

test('failover pair: the primary appears once the guest negotiates, enslaved beside the standby', {
  skip: env.skip,
  timeout: 180_000,
}, async (t) => {
  const { qemu, guest } = env.need();
  await withRunDir('pt-failover', async (dir) => {
    const { vm, paths } = await startGuest({
      qemu,
      dir,
      live: prepareLiveDef(guestDomain('e2e-qemu-failover', guest, { interfaces: failoverPair(MAC) })),
      hostDevices: new Map([['hostdev0', { kind: 'emulated-nic', model: 'e1000e', mac: MAC }]]),
      name: 'QEMU of domain e2e-qemu-failover',
    });
    try {
      // Hidden until negotiation: QEMU has not realized the primary yet.
      await assert.rejects(vm.qmp.execute('qom-get', { path: '/machine/peripheral/hostdev0', property: 'mac' }));
      const negotiated = vm.qmp.waitForEvent(
        'FAILOVER_NEGOTIATED',
        (ev) => ev.data['device-id'] === 'ua-backup0',
        90_000,
      );
      const t0 = performance.now();
      await vm.qmp.execute('cont');
      await negotiated;
      t.diagnostic(`cont -> FAILOVER_NEGOTIATED: ${((performance.now() - t0) / 1000).toFixed(2)} s`);

      const alive = (): string | undefined => (vm.isAlive() ? undefined : 'QEMU exited');
      const primary = await waitForGuestNic(
        paths.consoleLog,
        (n) => n.driver === 'e1000e' && n.master !== '-',
        60_000,
        alive,
      );
      const standby = await waitForGuestNic(
        paths.consoleLog,
        (n) => n.driver === 'virtio_net' && n.master !== '-',
        10_000,
        alive,
      );
      t.diagnostic(`cont -> primary enslaved on the guest console: ${((performance.now() - t0) / 1000).toFixed(2)} s`);
      assert.equal(primary.mac, MAC);
      assert.equal(standby.mac, MAC);
      assert.equal(primary.master, standby.master, 'one failover master holds both');
      assert.equal(
        await vm.qmp.execute('qom-get', { path: '/machine/peripheral/hostdev0', property: 'failover_pair_id' }),
        'ua-backup0',
      );

      await vm.qmp.execute('quit');
      await vm.waitExit(20_000);
    } finally {
      if (vm.isAlive()) await vm.destroy(5_000);
    }
  });
});
