import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import type { DomainDef } from '../../src/conf/domain/types.ts';
import { parseMac } from '../../src/conf/mac.ts';
import { parsePciAddress } from '../../src/conf/pci-address.ts';
import { chooseAccel, readProcModules } from '../../src/qemu/accel.ts';
import { buildArgv } from '../../src/qemu/argv.ts';
import { prepareLiveDef } from '../../src/qemu/live-def.ts';
import { migrate } from '../../src/qemu/migration.ts';
import { launchQemu, type QemuProcess } from '../../src/qemu/process.ts';
import { waitForGuestNic, withRunDir } from './helpers/console.ts';
import { e2eEnv, type GuestImage } from './helpers/env.ts';

/**
 * Local live migration of a guest with a failover pair (virtio standby + the sim's e1000e as
 * the VF primary), as ../shared/tools/vmlab/probes/05-failover-migration.mjs does by hand: the
 * source unplugs the primary with the guest's help, migrates, and the destination's guest gets
 * its primary back.
 */
const env = e2eEnv();
const MAC = parseMac('52:54:00:fa:22:01');

function domain(guest: GuestImage): DomainDef {
  return {
    name: 'e2e-qemu-migration',
    memoryKiB: 256 * 1024,
    vcpus: 1,
    os: { type: 'hvm', machine: 'q35', kernel: guest.vmlinux, initrd: guest.initrd, cmdline: guest.append },
    devices: {
      controllers: [],
      hostdevs: [],
      interfaces: [
        { type: 'user', model: 'virtio', mac: MAC, alias: 'ua-backup0', teaming: { type: 'persistent' } },
        {
          type: 'hostdev',
          mac: MAC,
          source: { managed: true, address: parsePciAddress('0000:06:10.2') },
          teaming: { type: 'transient', persistent: 'ua-backup0' },
        },
      ],
      serials: [],
      consoles: [],
    },
  };
}

test('failover pair migrates: primary unplugged on the source, enslaved again on the destination', {
  skip: env.skip,
  timeout: 240_000,
}, async (t) => {
  const { qemu, guest } = env.need();
  await withRunDir('pt-migrate', async (dir) => {
    const live = prepareLiveDef(domain(guest));
    const accel = chooseAccel(await readProcModules());
    const hostDevices = new Map([['hostdev0', { kind: 'emulated-nic', model: 'e1000e', mac: MAC } as const]]);
    const start = async (side: 'src' | 'dst'): Promise<{ vm: QemuProcess; console: string }> => {
      const p = {
        qmpSocket: join(dir, `${side}.qmp`),
        consoleLog: join(dir, `${side}.console`),
        pidfile: join(dir, `${side}.pid`),
      };
      const argv = buildArgv(live, { accel, ...p, hostDevices, incoming: side === 'dst' });
      const vm = await launchQemu({
        binary: qemu,
        argv,
        ...p,
        logFile: join(dir, `${side}.log`),
        name: `QEMU ${side}`,
      });
      return { vm, console: p.consoleLog };
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
      assert.equal(((await src.vm.qmp.execute('query-status')) as { status: string }).status, 'postmigrate');

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
