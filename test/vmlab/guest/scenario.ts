/**
 * The VM-lab scenario as one function over any Kernel, so the very same steps run on the real
 * kernel inside the VM (guest/igb-checks.ts) and on the sim's intel-82576 profile (the fidelity
 * check in ../igb.test.ts). What only a real host has (ip -j read-back, a second rtnetlink
 * implementation, a nested QEMU) comes in as hooks. Each step records what it saw; a failed
 * step records its error and the rest still run, so one boot reports everything.
 */
import { PassthruError } from '../../../src/conf/error.ts';
import { parseMac } from '../../../src/conf/mac.ts';
import { formatNodeDevice } from '../../../src/conf/nodedev/format.ts';
import { formatPciAddress, type PciAddress } from '../../../src/conf/pci-address.ts';
import { bindToStub, currentDriver, netdevMac, rebindHostDriver, vfOf } from '../../../src/host/bind.ts';
import { findDevice, readInventory } from '../../../src/host/inventory.ts';
import { nodeDevices } from '../../../src/host/nodedev.ts';
import { associatePort } from '../../../src/host/port-profile.ts';
import { setVfCount } from '../../../src/host/sriov.ts';
import type { Kernel, VfConfig } from '../../../src/host/types.ts';
import { applyVfSettings, settingsToRestore } from '../../../src/host/vf-apply.ts';
import { type HostChange, watchHost } from '../../../src/host/watch.ts';

export interface ScenarioHooks {
  /** Bring the PF up as an admin would (libvirt will not touch VFs of a PF that is down). */
  readonly pfUp?: (pfNetdev: string) => Promise<void>;
  /** The VF table as another tool reads it (linux: ip -j). */
  readonly readBack?: (pfNetdev: string) => Promise<readonly VfConfig[]>;
  /** The same host through the other rtnetlink implementation (linux: iproute2). */
  readonly secondKernel?: () => Promise<Kernel>;
  /** A QEMU that takes the detached VF (linux: nested QEMU from our argv). */
  readonly nested?: (kernel: Kernel, vf: PciAddress) => Promise<unknown>;
  /** Whether /dev/vfio/N exists. */
  readonly devVfio: (group: string) => boolean;
}

export function errorOf(err: unknown): Record<string, unknown> {
  return err instanceof PassthruError
    ? { code: err.code, errno: err.errno, message: err.message }
    : { code: 'UNEXPECTED', message: String(err) };
}

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function runScenario(kernel: Kernel, hooks: ScenarioHooks): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const ms: Record<string, number> = {};
  out['ms'] = ms;
  const t0 = Date.now();
  const step = async (name: string, fn: () => Promise<unknown>): Promise<void> => {
    const t = Date.now();
    try {
      out[name] = await fn();
    } catch (err) {
      out[name] = { error: errorOf(err) };
    }
    ms[name] = Date.now() - t;
  };

  const inv0 = await readInventory(kernel.sysfs);
  const pf = inv0.devices.find((d) => d.vendor === 0x8086 && d.device === 0x10c9);
  if (!pf) return { fatal: 'no igb PF', devices: inv0.devices.map((d) => d.name) };
  const pfNetdev = pf.netdevs.find((n) => !n.representor)?.name ?? '';
  out['pf'] = {
    name: pf.name,
    driver: pf.driver,
    netdev: pfNetdev,
    totalVfs: pf.sriov?.totalVfs,
    numVfs: pf.sriov?.numVfs,
  };
  await hooks.pfUp?.(pfNetdev);

  // Follow the host while the VF count changes: the VFs must show up as 'added' events.
  const events: HostChange[] = [];
  const watcher = await watchHost(kernel, (c) => events.push(...c), { pollMs: 500, debounceMs: 200 });

  await step('sriov', async () => {
    const r = await setVfCount(kernel, pf.address, 7, { timeoutMs: 60_000 });
    // igbvf's netdev comes from the uevent-driven modprobe: wait for all seven.
    for (let i = 0; i < 300; i++) {
      const inv = await readInventory(kernel.sysfs);
      if (inv.devices.filter((d) => d.physfn && d.netdevs.length > 0).length >= 7) break;
      await pause(100);
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
    const a = findDevice(await readInventory(kernel.sysfs), pf.address)?.sriov?.vfs[index];
    if (!a) throw new PassthruError('NO_DEVICE', `PF ${pf.name} has no VF ${index}`);
    return a;
  };

  await step('watch', async () => {
    for (let i = 0; i < 100 && events.filter((e) => e.kind === 'added').length < 7; i++) await pause(100);
    watcher.stop();
    return {
      added: events.filter((e) => e.kind === 'added').map((e) => e.name),
      pfChanged: events.some((e) => e.name === pf.name && e.fields?.includes('numVfs')),
    };
  });

  await step('nodedev', async () => {
    const defs = nodeDevices(await readInventory(kernel.sysfs));
    const pick = (a: PciAddress): string | undefined => {
      const d = defs.find((x) => x.name === `pci_${formatPciAddress(a).replace(/[:.]/g, '_')}`);
      return d && formatNodeDevice(d);
    };
    return { pf: pick(pf.address), vf: pick(await vfAt(0)), count: defs.length };
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
    const table = await kernel.vfTable(pfNetdev);
    return { table, ipJ: (await hooks.readBack?.(pfNetdev))?.slice(0, 2) ?? table.slice(0, 2) };
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

  // Every attribute through applyVfSettings (checks, quirks, read-back), then back to the row
  // it had; link state and port profiles are refused as igb refuses them.
  await step('vfAttrs', async () => {
    const before = (await kernel.vfTable(pfNetdev)).find((r) => r.vf === 4);
    const written = await applyVfSettings(kernel, pfNetdev, 4, {
      mac: parseMac('52:54:00:00:00:44'),
      vlan: { id: 47, qos: 2 },
      rate: { minTx: 0, maxTx: 300 },
      spoofchk: false,
      trust: true,
    });
    const row = (await kernel.vfTable(pfNetdev)).find((r) => r.vf === 4);
    const refusal = async (fn: () => Promise<unknown>): Promise<unknown> => {
      try {
        await fn();
        return 'accepted';
      } catch (err) {
        return errorOf(err);
      }
    };
    const linkState = await refusal(() => applyVfSettings(kernel, pfNetdev, 4, { linkState: 'disable' }));
    const rawLinkState = await refusal(() => kernel.setVf(pfNetdev, 4, { linkState: 'disable' }));
    const profile = {
      type: '802.1Qbh' as const,
      profileid: 'finance',
      instanceUuid: 'c7a5fdbd-edaf-9455-926a-d65c16db1809',
    };
    const port = await refusal(() => associatePort(kernel, pfNetdev, 4, profile));
    const rawPort = await refusal(() => kernel.setVfPort(pfNetdev, 4, profile, 'associate'));
    const portStatus = (await kernel.vfPortStatus(pfNetdev, 4)) ?? null;
    if (before && row) await applyVfSettings(kernel, pfNetdev, 4, settingsToRestore(before, row));
    const after = (await kernel.vfTable(pfNetdev)).find((r) => r.vf === 4);
    return { before, written, row, linkState, rawLinkState, port, rawPort, portStatus, restored: after };
  });

  if (hooks.secondKernel) {
    const second = hooks.secondKernel;
    // The same through the other rtnetlink implementation: both must see and refuse alike.
    await step('iproute2', async () => {
      const ip = await second();
      await ip.setVf(pfNetdev, 3, { mac: parseMac('52:54:00:00:00:33'), vlan: { id: 45, qos: 1 }, trust: true });
      let proto: unknown = 'accepted';
      try {
        await ip.setVf(pfNetdev, 3, { vlan: { id: 46, proto: '802.1ad' } });
      } catch (err) {
        proto = errorOf(err);
      }
      return { row3: (await kernel.vfTable(pfNetdev)).find((r) => r.vf === 3), proto };
    });
  }

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
      devVfio: group !== undefined && hooks.devVfio(group),
    };
  });

  // The kernel's answers to writes it refuses, errno by errno (vfio-pci is loaded by now).
  await step('rules', async () => {
    const dev = (a: PciAddress): string => `/sys/bus/pci/devices/${formatPciAddress(a)}`;
    const vf2 = await vfAt(2);
    const vf3 = formatPciAddress(await vfAt(3));
    const p = dev(pf.address);
    const tries: [string, string, string][] = [
      ['numvfs non-zero to non-zero', `${p}/sriov_numvfs`, '3'],
      ['numvfs above total', `${p}/sriov_numvfs`, '8'],
      ['numvfs not a number', `${p}/sriov_numvfs`, 'x'],
      ['numvfs same value', `${p}/sriov_numvfs`, '7'],
      ['read-only attribute', `${p}/vendor`, '0x1234'],
      ['no such attribute', `${p}/no_such_attribute`, '1'],
      ['unbind from another driver', '/sys/bus/pci/drivers/igb/unbind', vf3],
      ['bind while bound', '/sys/bus/pci/drivers/igbvf/bind', vf3],
      ['vfio-pci bind without override', '/sys/bus/pci/drivers/vfio-pci/bind', vf3],
      ['probe an unknown device', '/sys/bus/pci/drivers_probe', '0000:99:00.0'],
      ['probe a bound device', '/sys/bus/pci/drivers_probe', vf3],
      ['reset with 2', `${dev(vf2)}/reset`, '2'],
      ['reset a VF', `${dev(vf2)}/reset`, '1'],
      ['autoprobe not a bool', `${p}/sriov_drivers_autoprobe`, 'maybe'],
    ];
    const r: Record<string, string> = {};
    for (const [what, path, value] of tries) {
      try {
        await kernel.writeSysfs(path, value);
        r[what] = 'ok';
      } catch (err) {
        r[what] = err instanceof PassthruError ? (err.errno ?? err.code) : String(err);
      }
    }
    return r;
  });

  if (hooks.nested) {
    const nested = hooks.nested;
    await step('nestedQemu', async () => {
      if (!vf1) throw new Error('no detached VF');
      return nested(kernel, vf1);
    });
  }

  await step('release', async () => {
    if (!vf1 || originalMac === undefined) throw new Error('nothing detached');
    // libvirt's restore: the saved MAC as admin MAC, so the VF driver comes back with it.
    await kernel.setVf(pfNetdev, 1, { mac: parseMac(originalMac) });
    await rebindHostDriver(kernel, vf1);
    const name = formatPciAddress(vf1);
    let netdev: string | undefined;
    for (let i = 0; i < 100 && netdev === undefined; i++) {
      netdev = (await kernel.sysfs.list(`/sys/bus/pci/devices/${name}/net`))[0];
      if (netdev === undefined) await pause(100);
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

  // sriov_drivers_autoprobe=0: new VFs stay driverless, a plain probe leaves them so (only an
  // override may bind them), and giving one back to "its host driver" leaves it driverless.
  await step('autoprobe', async () => {
    const r = await setVfCount(kernel, pf.address, 2, { autoprobe: false, timeoutMs: 30_000 });
    const vf = r.vfs[0];
    if (!vf) throw new PassthruError('NO_DEVICE', `PF ${pf.name} made no VF`);
    const driver = async (): Promise<string | null> => (await currentDriver(kernel.sysfs, vf)) ?? null;
    const atStart = await driver();
    await kernel.writeSysfs('/sys/bus/pci/drivers_probe', formatPciAddress(vf));
    const afterProbe = await driver();
    const bind = await bindToStub(kernel, vf);
    const onStub = await driver();
    await rebindHostDriver(kernel, vf);
    const afterRebind = await driver();
    // With the driver it had, it goes back to it whatever autoprobe says.
    await bindToStub(kernel, vf);
    await rebindHostDriver(kernel, vf, 'igbvf');
    const afterRebindTo = await driver();
    const override = (await kernel.sysfs.read(`/sys/bus/pci/devices/${formatPciAddress(vf)}/driver_override`)) ?? null;
    const off = await setVfCount(kernel, pf.address, 0, { autoprobe: true, timeoutMs: 30_000 });
    return {
      numVfs: r.after,
      atStart,
      afterProbe,
      bind,
      onStub,
      afterRebind,
      afterRebindTo,
      override,
      after: off.after,
    };
  });

  out['totalMs'] = Date.now() - t0;
  return out;
}
