import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseMac } from '../../src/conf/mac.ts';
import { prepareLiveDef } from '../../src/qemu/live-def.ts';
import { migrate } from '../../src/qemu/migration.ts';
import type { QemuProcess } from '../../src/qemu/process.ts';
import { waitForGuestNic, withRunDir } from './helpers/console.ts';
import { e2eEnv } from './helpers/env.ts';
import { failoverPair, guestDomain, startGuest } from './helpers/guest-domain.ts';

/**
 * Local live migration of a guest with a failover pair (virtio standby + the sim's e1000e as
 * the VF primary), as QEMU's docs/system/virtio-net-failover.rst describes: the
 * source unplugs the primary with the guest's help, migrates, and the destination's guest gets
 * its primary back.
 */
const env = e2eEnv();
const MAC = parseMac('52:54:00:fa:22:01');

test('failover pair migrates: primary unplugged on the source, enslaved again on the destination', {
  skip: env.skip,
  timeout: 240_000,
}, async (t) => {
  const { qemu, guest } = env.need();
  await withRunDir('pt-migrate', async (dir) => {
    const live = prepareLiveDef(guestDomain('e2e-qemu-migration', guest, { interfaces: failoverPair(MAC) }));
    const hostDevices = new Map([['hostdev0', { kind: 'emulated-nic', model: 'e1000e', mac: MAC } as const]]);
    const start = async (side: 'src' | 'dst'): Promise<{ vm: QemuProcess; console: string }> => {
      const { vm, paths } = await startGuest({
        qemu,
        dir,
        live,
        hostDevices,
        name: `QEMU ${side}`,
        prefix: side,
        incoming: side === 'dst',
      });
      return { vm, console: paths.consoleLog };
    };
    const src = await start('src');
    let dst: { vm: QemuProcess; console: string } | undefined;
    try {
      await src.vm.qmp.execute('cont');
      const enslaved = (n: { driver: string; master: string }): boolean => n.driver === 'e1000e' && n.master !== '-';
      await waitForGuestNic(src.console, enslaved, 90_000, () => (src.vm.isAlive() ? undefined : 'source QEMU exited'));

      dst = await start('dst');
      const d = dst;
      const t0 = performance.now();
      const result = await migrate(src.vm.qmp, d.vm.qmp, { listen: 'tcp:127.0.0.1:0', timeoutMs: 120_000 });
      t.diagnostic(
        `migration: ${((performance.now() - t0) / 1000).toFixed(2)} s wall, QEMU total ${String(result.totalTimeMs)} ms, downtime ${String(result.downtimeMs)} ms, statuses ${result.statuses.join(' > ')}`,
      );
      assert.deepEqual(result.unpluggedPrimaries, ['hostdev0']);
      assert.ok(result.statuses.includes('wait-unplug'), 'the source waited for the guest to unplug the primary');
      // 'completed' can arrive while the source still reports finish-migrate for a moment.
      let status = '';
      for (let i = 0; i < 100 && status !== 'postmigrate'; i++) {
        status = ((await src.vm.qmp.execute('query-status')) as { status: string }).status;
        if (status !== 'postmigrate') await sleep(50);
      }
      assert.equal(status, 'postmigrate');

      // The destination was started paused (-S), as libvirt does; it runs on `cont`.
      await d.vm.qmp.execute('cont');
      const back = await waitForGuestNic(d.console, enslaved, 90_000, () =>
        d.vm.isAlive() ? undefined : 'destination QEMU exited',
      );
      assert.equal(back.mac, MAC);
      t.diagnostic(
        `migrate start -> primary enslaved on the destination: ${((performance.now() - t0) / 1000).toFixed(2)} s`,
      );
    } finally {
      for (const side of [src, dst]) {
        if (side?.vm.isAlive()) {
          await side.vm.qmp.execute('quit').catch(() => undefined);
          await side.vm.waitExit(10_000).catch(() => side.vm.destroy(2_000));
        }
      }
    }
  });
});
