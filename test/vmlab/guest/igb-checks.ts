/**
 * Runs INSIDE the VM-lab guest (a real Debian kernel with QEMU's igb NIC behind a root port and
 * intel-iommu): drives passthru's linux backend against the real igb/igbvf drivers, vfio-pci
 * and rtnetlink, and prints one line `VMLAB-RESULT <json>` that test/vmlab/igb.test.ts checks.
 * Each step records what it saw; a failed step records its error and the rest still run, so
 * one boot reports everything.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readDomainXml } from '../../../src/conf/domain/read.ts';
import { PassthruError } from '../../../src/conf/error.ts';
import { parseMac } from '../../../src/conf/mac.ts';
import { formatPciAddress, type PciAddress } from '../../../src/conf/pci-address.ts';
import { bindToStub, currentDriver, netdevMac, rebindHostDriver, vfOf } from '../../../src/host/bind.ts';
import { findDevice, readInventory } from '../../../src/host/inventory.ts';
import { ipRoute2, parseLinkShow, runProcess } from '../../../src/host/linux/iproute2.ts';
import { openLinuxHost } from '../../../src/host/linux/kernel.ts';
import { formatNodeDevice } from '../../../src/conf/nodedev/format.ts';
import { nodeDevices } from '../../../src/host/nodedev.ts';
import { setVfCount } from '../../../src/host/sriov.ts';
import { type HostChange, watchHost } from '../../../src/host/watch.ts';
import type { DevicePresentation } from '../../../src/host/types.ts';
import { buildArgv } from '../../../src/qemu/argv.ts';
import { prepareLiveDef } from '../../../src/qemu/live-def.ts';
import { QmpClient } from '../../../src/qemu/qmp.ts';

const out: Record<string, unknown> = {};
const t0 = Date.now();

function errorOf(err: unknown): Record<string, unknown> {
  return err instanceof PassthruError
    ? { code: err.code, errno: err.errno, message: err.message }
    : { code: 'UNEXPECTED', message: String(err) };
}

async function step(name: string, fn: () => Promise<unknown>): Promise<void> {
  const t = Date.now();
  try {
    out[name] = await fn();
  } catch (err) {
    out[name] = { error: errorOf(err) };
  }
  (out['ms'] as Record<string, number>)[name] = Date.now() - t;
}
out['ms'] = {};

const rtnlKind = process.env['PASSTHRU_RTNL'] === 'iproute2' ? 'iproute2' : 'default';
const kernel = await openLinuxHost(rtnlKind === 'iproute2' ? { rtnl: ipRoute2() } : {});
out['rtnl'] = kernel.rtnl.name;
const inv0 = await readInventory(kernel.sysfs);
const pf = inv0.devices.find((d) => d.vendor === 0x8086 && d.device === 0x10c9);
if (!pf) {
  console.log(`VMLAB-RESULT ${JSON.stringify({ fatal: 'no igb PF', devices: inv0.devices.map((d) => d.name) })}`);
  process.exit(0);
}
const pfNetdev = pf.netdevs.find((n) => !n.representor)?.name ?? '';
out['pf'] = {
  name: pf.name,
  driver: pf.driver,
  netdev: pfNetdev,
  totalVfs: pf.sriov?.totalVfs,
  numVfs: pf.sriov?.numVfs,
};
// libvirt will not touch VFs of a PF that is down; bring it up as an admin would.
await runProcess('ip', ['link', 'set', 'dev', pfNetdev, 'up']);

// Follow the host while the VF count changes: the VFs must show up as 'added' events.
const events: HostChange[] = [];
const watcher = await watchHost(kernel, (c) => events.push(...c), { pollMs: 500, debounceMs: 200 });

await step('sriov', async () => {
  const r = await setVfCount(kernel, pf.address, 7, { timeoutMs: 60_000 });
  // igbvf's netdev comes from the uevent-driven modprobe: wait for all seven.
  for (let i = 0; i < 300; i++) {
    const inv = await readInventory(kernel.sysfs);
    if (inv.devices.filter((d) => d.physfn && d.netdevs.length > 0).length >= 7) break;
    await new Promise((res) => setTimeout(res, 100));
  }
  const inv = await readInventory(kernel.sysfs);
  const p = findDevice(inv, pf.address);
  return {
    before: r.before,
    after: r.after,
    settled: r.settled,
    vfs: (p?.sriov?.vfs ?? []).map((a, index) => {
      const d = findDevice(inv, a);
      return {
        index,
        name: formatPciAddress(a),
        physfnIndex: d?.physfn?.index,
        group: d?.iommuGroup,
        groupSize: d?.iommuGroupMembers.length,
        driver: d?.driver,
        netdevs: d?.netdevs.map((n) => n.name),
      };
    }),
  };
});

const vfAt = async (index: number): Promise<PciAddress> => {
  const p = findDevice(await readInventory(kernel.sysfs), pf.address);
  const a = p?.sriov?.vfs[index];
  if (!a) throw new PassthruError('NO_DEVICE', `PF ${pf.name} has no VF ${index}`);
  return a;
};

await step('watch', async () => {
  for (let i = 0; i < 100 && events.filter((e) => e.kind === 'added').length < 7; i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  watcher.stop();
  return {
    added: events.filter((e) => e.kind === 'added').map((e) => e.name),
    pfChanged: events.some((e) => e.name === pf.name && e.fields?.includes('numVfs')),
  };
});

await step('nodedev', async () => {
  const defs = nodeDevices(await readInventory(kernel.sysfs));
  const pick = (n: string): string | undefined => {
    const d = defs.find((x) => x.name === n);
    return d && formatNodeDevice(d);
  };
  const vf0 = formatPciAddress(await vfAt(0)).replace(/[:.]/g, '_');
  return { pf: pick(`pci_${pf.name.replace(/[:.]/g, '_')}`), vf: pick(`pci_${vf0}`), count: defs.length };
});

await step('vfOf', async () => vfOf(kernel.sysfs, await vfAt(3)));

await step('setVf', async () => {
  await kernel.setVf(pfNetdev, 0, {
    mac: parseMac('52:54:00:aa:bb:cc'),
    vlan: { id: 42 },
    spoofchk: true,
    trust: true,
  });
  await kernel.setVf(pfNetdev, 1, { vlan: { id: 43, qos: 3 }, rate: { minTx: 0, maxTx: 100 } });
  await kernel.setVf(pfNetdev, 1, { trust: false, spoofchk: false });
  // Read back through iproute2, whatever wrote it.
  const { stdout, stderr } = await runProcess('ip', ['-j', '-d', 'link', 'show', 'dev', pfNetdev]);
  return { table: await kernel.vfTable(pfNetdev), ipJ: parseLinkShow(stdout, stderr, pfNetdev).vfs.slice(0, 2) };
});

await step('refused', async () => {
  const tries = {
    proto8021ad: { vlan: { id: 44, proto: '802.1ad' as const } },
    minTxRate: { rate: { minTx: 10, maxTx: 100 } },
    linkState: { linkState: 'enable' as const },
  };
  const r: Record<string, unknown> = {};
  for (const [k, s] of Object.entries(tries)) {
    try {
      await kernel.setVf(pfNetdev, 2, s);
      r[k] = 'accepted';
    } catch (err) {
      r[k] = errorOf(err);
    }
  }
  return r;
});

// The same through the other rtnetlink implementation: both must see and refuse alike.
await step('iproute2', async () => {
  const ip = await openLinuxHost({ rtnl: ipRoute2() });
  await ip.setVf(pfNetdev, 3, { mac: parseMac('52:54:00:00:00:33'), vlan: { id: 45, qos: 1 }, trust: true });
  let proto: unknown = 'accepted';
  try {
    await ip.setVf(pfNetdev, 3, { vlan: { id: 46, proto: '802.1ad' } });
  } catch (err) {
    proto = errorOf(err);
  }
  return { rtnl: ip.rtnl.name, row3: (await kernel.vfTable(pfNetdev)).find((r) => r.vf === 3), proto };
});

let vf1: PciAddress | undefined;
let originalMac: string | undefined;
await step('detach', async () => {
  vf1 = await vfAt(1);
  const name = formatPciAddress(vf1);
  const netdev = (await kernel.sysfs.list(`/sys/bus/pci/devices/${name}/net`))[0];
  originalMac = netdev === undefined ? undefined : await netdevMac(kernel.sysfs, netdev);
  const r = await bindToStub(kernel, vf1);
  const group = (await kernel.sysfs.readLink(`/sys/bus/pci/devices/${name}/iommu_group`))?.split('/').pop();
  return {
    ...r,
    vf: name,
    originalMac,
    driver: await currentDriver(kernel.sysfs, vf1),
    netdevsAfter: await kernel.sysfs.list(`/sys/bus/pci/devices/${name}/net`),
    group,
    devVfio: group !== undefined && existsSync(`/dev/vfio/${group}`),
  };
});

await step('nestedQemu', async () => {
  if (!vf1) throw new Error('no detached VF');
  const a = vf1;
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
  const presentation: DevicePresentation = await kernel.present(a);
  const dir = await mkdtemp(join(tmpdir(), 'nested-'));
  const qmpSocket = join(dir, 'qmp.sock');
  const argv = buildArgv(live, {
    accel: 'tcg',
    qmpSocket,
    consoleLog: join(dir, 'console.log'),
    pidfile: join(dir, 'qemu.pid'),
    hostDevices: new Map([[alias, presentation]]),
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
});

await step('release', async () => {
  if (!vf1 || originalMac === undefined) throw new Error('nothing detached');
  // libvirt's restore: the saved MAC as admin MAC, so igbvf comes back with it on rebind.
  await kernel.setVf(pfNetdev, 1, { mac: parseMac(originalMac) });
  await rebindHostDriver(kernel, vf1);
  const name = formatPciAddress(vf1);
  let netdev: string | undefined;
  for (let i = 0; i < 100 && netdev === undefined; i++) {
    netdev = (await kernel.sysfs.list(`/sys/bus/pci/devices/${name}/net`))[0];
    if (netdev === undefined) await new Promise((r) => setTimeout(r, 100));
  }
  return {
    driver: await currentDriver(kernel.sysfs, vf1),
    mac: netdev === undefined ? undefined : await netdevMac(kernel.sysfs, netdev),
    originalMac,
  };
});

await step('sriovOff', async () => {
  const r = await setVfCount(kernel, pf.address, 0, { timeoutMs: 30_000 });
  return { after: r.after, vfs: r.vfs.length };
});

out['totalMs'] = Date.now() - t0;
kernel.close();
console.log(`VMLAB-RESULT ${JSON.stringify(out)}`);
process.exit(0);
