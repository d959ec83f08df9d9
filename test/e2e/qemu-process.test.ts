import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import type { DomainDef } from '../../src/conf/domain/types.ts';
import { PassthruError } from '../../src/conf/error.ts';
import { parseMac } from '../../src/conf/mac.ts';
import { parsePciAddress } from '../../src/conf/pci-address.ts';
import { buildArgv } from '../../src/qemu/argv.ts';
import { busAliases, hostdevProps } from '../../src/qemu/device-props.ts';
import { prepareLiveDef } from '../../src/qemu/live-def.ts';
import { attachQemu, launchQemu } from '../../src/qemu/process.ts';
import { QmpCommandError } from '../../src/qemu/qmp.ts';
import { withRunDir } from './helpers/console.ts';
import { qemuEnv, REPO_ROOT } from './helpers/env.ts';

/** QEMU without a guest: the process launcher and the QMP client against the real thing. */
const env = qemuEnv();

const domain: DomainDef = {
  name: 'e2e-qemu-process',
  memoryKiB: 64 * 1024,
  vcpus: 1,
  os: { type: 'hvm', machine: 'q35' },
  devices: {
    controllers: [],
    hostdevs: [{ mode: 'subsystem', type: 'pci', source: { managed: true, address: parsePciAddress('0000:06:10.2') } }],
    interfaces: [],
    serials: [],
    consoles: [],
  },
};

function paths(dir: string) {
  return {
    qmpSocket: join(dir, 'qmp.sock'),
    consoleLog: join(dir, 'console.log'),
    pidfile: join(dir, 'qemu.pid'),
    logFile: join(dir, 'qemu.log'),
  };
}

test('QEMU refusing its command line: the error carries the last lines of its log', {
  skip: env.skip,
  timeout: 60_000,
}, async () => {
  const binary = env.need();
  await withRunDir('pt-qproc', async (dir) => {
    const p = paths(dir);
    const argv = ['-machine', 'q35', '-accel', 'tcg', '-nodefaults', '-display', 'none', '-pidfile', p.pidfile];
    argv.push('-chardev', `socket,id=charmonitor,path=${p.qmpSocket},server=on,wait=off`);
    argv.push('-mon', 'chardev=charmonitor,id=monitor,mode=control', '-device', '{"driver":"no-such-nic","id":"x"}');
    await assert.rejects(launchQemu({ binary, argv, ...p, name: 'QEMU of domain bad' }), (e: unknown) => {
      assert.ok(e instanceof PassthruError);
      assert.equal(e.code, 'QEMU_FAILED');
      assert.match(e.message, /QEMU of domain bad exited with code 1 before QMP was up/);
      assert.match(e.message, /'no-such-nic' is not a valid device model name/);
      return true;
    });
    await assert.rejects(launchQemu({ binary: join(dir, 'no-qemu'), argv, ...p }), (e: unknown) => {
      return e instanceof PassthruError && e.code === 'QEMU_FAILED' && /cannot run .*no-qemu/.test(e.message);
    });
  });
});

test('launch, QMP, hot-plug with the boot-time builder, reconnect after a daemon restart, destroy', {
  skip: env.skip,
  timeout: 90_000,
}, async () => {
  const binary = env.need();
  await withRunDir('pt-qproc', async (dir) => {
    const p = paths(dir);
    const live = prepareLiveDef(domain);
    const mac = parseMac('52:54:00:00:00:0a');
    const argv = buildArgv(live, {
      accel: 'tcg',
      ...p,
      hostDevices: new Map([['hostdev0', { kind: 'emulated-nic', model: 'e1000e', mac }]]),
    });
    const vm = await launchQemu({ binary, argv, ...p, name: 'QEMU of domain e2e-qemu-process' });
    let attached;
    try {
      // Detached: a process group of its own, so a signal to the daemon's group leaves it alone.
      const stat = await readFile(`/proc/${vm.pid}/stat`, 'utf8');
      assert.equal(Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]), vm.pid);
      assert.equal((await readFile(p.pidfile, 'utf8')).trim(), String(vm.pid));

      assert.deepEqual(await vm.qmp.execute('query-status'), {
        status: 'prelaunch',
        singlestep: false,
        running: false,
      });
      await assert.rejects(
        vm.qmp.execute('no-such-command'),
        (e: unknown) => e instanceof QmpCommandError && e.qmpClass === 'CommandNotFound',
      );
      const resumed = vm.qmp.waitForEvent('RESUME', undefined, 10_000);
      await vm.qmp.execute('cont');
      await resumed;

      // Hot-plug onto the spare root port with the same builder the command line used.
      const spare = live.devices.controllers.find((c) => c.model === 'pcie-root-port' && c.index === 2);
      assert.equal(spare?.alias, 'pci.2');
      const props = hostdevProps(
        { alias: 'hostdev1', guestAddress: { type: 'pci', domain: 0, bus: 2, slot: 0, function: 0 } },
        { kind: 'emulated-nic', model: 'e1000e', mac: parseMac('52:54:00:00:00:0b') },
        busAliases(live),
      );
      await vm.qmp.execute('device_add', props);
      assert.equal(
        await vm.qmp.execute('qom-get', { path: '/machine/peripheral/hostdev1', property: 'mac' }),
        '52:54:00:00:00:0b',
      );
      // Before the guest's firmware numbers the buses query-pci lists nothing behind a root
      // port, so ask QOM which bus each device hangs on.
      const parentBus = (id: string) =>
        vm.qmp.execute('qom-get', { path: `/machine/peripheral/${id}`, property: 'parent_bus' });
      assert.equal(await parentBus('hostdev0'), '/machine/peripheral/pci.1/pci.1');
      assert.equal(await parentBus('hostdev1'), '/machine/peripheral/pci.2/pci.2');

      // The daemon goes away (its QMP connection with it); a new daemon attaches by pidfile.
      await vm.qmp.close();
      attached = await attachQemu({
        pidfile: p.pidfile,
        qmpSocket: p.qmpSocket,
        name: 'QEMU of domain e2e-qemu-process',
      });
      assert.equal(attached.pid, vm.pid);
      assert.equal(((await attached.qmp.execute('query-status')) as { status: string }).status, 'running');
      await assert.rejects(
        attachQemu({ pidfile: p.pidfile, qmpSocket: join(dir, 'other.sock') }),
        (e: unknown) => e instanceof PassthruError && e.message.includes('is not the QEMU with QMP at'),
      );

      // A watcher with no timeout (the daemon's) and a bounded wait that runs out.
      const watcher = attached.waitExit();
      await assert.rejects(attached.waitExit(1), (e: unknown) => e instanceof PassthruError && e.code === 'TIMEOUT');
      const exit = await attached.destroy(5_000);
      // Not our child: no exit status, only that it said SHUTDOWN (SIGTERM) before it went.
      assert.deepEqual(await watcher, { announced: true });
      assert.deepEqual(exit, { announced: true });
      assert.equal(attached.isAlive(), false);
      assert.equal(vm.isAlive(), false);
      assert.ok((await readFile(p.logFile, 'utf8')).includes('terminating on signal 15'));
    } finally {
      if (vm.isAlive()) await vm.destroy(2_000);
    }
  });
});

test('QEMU outlives the process that launched it, and a later one attaches to it', {
  skip: env.skip,
  timeout: 90_000,
}, async () => {
  const binary = env.need();
  await withRunDir('pt-qproc', async (dir) => {
    const p = paths(dir);
    const argv = buildArgv(prepareLiveDef({ ...domain, devices: { ...domain.devices, hostdevs: [] } }), {
      accel: 'tcg',
      ...p,
      hostDevices: new Map(),
    });
    // A stand-in daemon: launches QEMU, prints its pid, exits without stopping it.
    const script = join(dir, 'daemon.mts');
    await writeFile(
      script,
      `import { launchQemu } from ${JSON.stringify(join(REPO_ROOT, 'src/qemu/process.ts'))};
const vm = await launchQemu(${JSON.stringify({ binary, argv, ...p })});
process.stdout.write(String(vm.pid));
process.exit(0);
`,
    );
    const daemon = spawnSync(process.execPath, ['--import', 'tsx', script], {
      encoding: 'utf8',
      cwd: REPO_ROOT,
      timeout: 60_000,
    });
    assert.equal(daemon.status, 0, daemon.stderr);
    const pid = Number(daemon.stdout.trim());
    const vm = await attachQemu({ pidfile: p.pidfile, qmpSocket: p.qmpSocket });
    try {
      assert.equal(vm.pid, pid);
      assert.equal(((await vm.qmp.execute('query-status')) as { status: string }).status, 'prelaunch');
      await vm.qmp.execute('quit');
      assert.deepEqual(await vm.waitExit(20_000), { announced: true });
    } finally {
      if (vm.isAlive()) await vm.destroy(2_000);
    }
  });
});
