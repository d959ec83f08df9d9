/**
 * Runs INSIDE the VM-lab guest (a real Debian kernel with QEMU's igb NIC behind a root port and
 * intel-iommu): the scenario of scenario.ts on passthru's linux backend, against the real igb,
 * igbvf, vfio-pci and rtnetlink, with the linux-only hooks (ip -j, iproute2 as a second
 * rtnetlink, a nested QEMU from our argv). Prints one line `VMLAB-RESULT <json>` that
 * test/vmlab/igb.test.ts checks.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readDomainXml } from '../../../src/conf/domain/read.ts';
import { formatPciAddress, type PciAddress } from '../../../src/conf/pci-address.ts';
import { ipRoute2, parseLinkShow, runProcess } from '../../../src/host/linux/iproute2.ts';
import { openLinuxHost } from '../../../src/host/linux/kernel.ts';
import type { Kernel } from '../../../src/host/types.ts';
import { buildArgv } from '../../../src/qemu/argv.ts';
import { prepareLiveDef } from '../../../src/qemu/live-def.ts';
import { QmpClient } from '../../../src/qemu/qmp.ts';
import { runScenario } from './scenario.ts';

/** A QEMU started with passthru's own argv for a domain holding the VF, paused (-S): enough
 *  for VFIO to open the group and realize the device. */
async function nestedQemu(kernel: Kernel, a: PciAddress): Promise<unknown> {
  const hex = (n: number, w: number): string => `0x${n.toString(16).padStart(w, '0')}`;
  const xml = `<domain type='kvm'>
  <name>vmlab-nested</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <devices>
    <hostdev mode='subsystem' type='pci' managed='yes'>
      <source><address domain='${hex(a.domain, 4)}' bus='${hex(a.bus, 2)}' slot='${hex(a.slot, 2)}' function='${hex(a.function, 1)}'/></source>
    </hostdev>
  </devices>
</domain>`;
  const live = prepareLiveDef(readDomainXml(xml));
  const alias = live.devices.hostdevs[0]?.alias ?? 'hostdev0';
  const dir = await mkdtemp(join(tmpdir(), 'nested-'));
  const qmpSocket = join(dir, 'qmp.sock');
  const argv = buildArgv(live, {
    accel: 'tcg',
    qmpSocket,
    consoleLog: join(dir, 'console.log'),
    pidfile: join(dir, 'qemu.pid'),
    hostDevices: new Map([[alias, await kernel.present(a)]]),
    startPaused: true,
  });
  const qemu = spawn('qemu-system-x86_64', argv, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  qemu.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  try {
    let qmp: QmpClient | undefined;
    for (let i = 0; i < 600 && !qmp; i++) {
      if (qemu.exitCode !== null) throw new Error(`nested QEMU exited: ${stderr}`);
      try {
        qmp = await QmpClient.connect(qmpSocket);
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    if (!qmp) throw new Error(`no QMP socket: ${stderr}`);
    const status = (await qmp.execute('query-status')) as { status: string };
    // Paused before the firmware ran, the root ports have no bus numbers yet, so query-pci does
    // not descend; the realized device is in the QOM tree with the host address it opened.
    const peripheral = JSON.stringify(await qmp.execute('qom-list', { path: '/machine/peripheral' }));
    const host = await qmp.execute('qom-get', { path: `/machine/peripheral/${alias}`, property: 'host' });
    await qmp.execute('quit').catch(() => undefined);
    await qmp.close();
    return {
      vfioDevice: argv.some((x) => x.includes('"vfio-pci"') && x.includes(formatPciAddress(a))),
      status: status.status,
      alias,
      realized: peripheral.includes(`"${alias}"`),
      host,
    };
  } finally {
    qemu.kill('SIGKILL');
  }
}

const kernel = await openLinuxHost();
const out = await runScenario(kernel, {
  pfUp: async (pf) => {
    await runProcess('ip', ['link', 'set', 'dev', pf, 'up']);
  },
  readBack: async (pf) => {
    const { stdout, stderr } = await runProcess('ip', ['-j', '-d', 'link', 'show', 'dev', pf]);
    return parseLinkShow(stdout, stderr, pf).vfs;
  },
  secondKernel: () => openLinuxHost({ rtnl: ipRoute2() }),
  nested: nestedQemu,
  devVfio: (group) => existsSync(`/dev/vfio/${group}`),
});
kernel.close();
console.log(`VMLAB-RESULT ${JSON.stringify({ rtnl: kernel.rtnl.name, ...out })}`);
process.exit(0);
