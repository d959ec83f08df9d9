import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { type MacAddress, ZERO_MAC } from '../../src/conf/mac.ts';
import { formatPciAddress } from '../../src/conf/pci-address.ts';
import { singleTag } from '../../src/conf/vlan.ts';
import { type PciDevice, readInventory } from '../../src/host/inventory.ts';
import { createSimHost } from '../../src/host/sim/create.ts';
import { openSimHost } from '../../src/host/sim/kernel.ts';
import { listProfiles, profileJson } from '../../src/host/sim/profile.ts';
import { vfCapabilities } from '../../src/host/vf-caps.ts';
import { hostOps } from '../../src/hostdev/host-ops.ts';
import { HostdevManager } from '../../src/hostdev/manager.ts';
import type { HostdevRequest, VfNetConfig } from '../../src/hostdev/request.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { simSnapshot, snapshotDiff } from '../helpers/sim-snapshot.ts';

/**
 * The test: for every sim profile, prepare then release leaves the sim tree
 * byte-identical. The profiles come from the profile directory (a JSON file each, and the
 * generated ones), so a new profile is covered without being listed here; the device set is
 * read from the profile's own inventory:
 * - VFs: one of each PF that has VFs (two PFs at most), with every attribute its PF driver can
 *   set (host/vf-caps.ts), each port of a multi-port VF through `ports`;
 * - every IOMMU group of non-VF endpoints that holds no PF with VFs (a PF's driver would take
 *   its VFs along): the whole group, the last function of a multifunction slot unassigned.
 * The host's own path (default routes, mount points) is taken out of the profile first: the
 * guards refuse it (test/hostdev/guards.test.ts), and this test wants the devices prepared.
 *
 * One difference is the driver's, and asserted as such: a PF driver that refuses an all-zero
 * admin MAC (mlx4) gets libvirt's "almost zero" 02:00:00:00:00:00 back where the VF had none
 * (run-step.ts), exactly that and nothing else.
 *
 * In the crash tier, beside the kill points: it is the other half of "the host exactly as
 * before", and the 4,096-VF profile makes it a few minutes on a loaded machine.
 */
const PROFILE_DIR = join(import.meta.dirname, '../../src/host/sim/profiles');
const ALMOST_ZERO = '02:00:00:00:00:00';

test('every file of the profile directory is a profile this test runs', () => {
  const files = readdirSync(PROFILE_DIR);
  const names = listProfiles();
  for (const f of files.filter((x) => x.endsWith('.json'))) {
    assert.ok(names.includes(f.slice(0, -5)), `profile file ${f} is not a built-in profile`);
  }
  // The generated profiles (scale.ts): one name each that no JSON file gives.
  const generated = names.filter((n) => !files.includes(`${n}.json`));
  assert.equal(generated.length, files.filter((x) => x.endsWith('.ts')).length);
});

/** The profile without its host's default routes and mount points (kept: its disks). */
function withoutHostUse(name: string): { json: unknown } {
  return {
    json: JSON.parse(
      JSON.stringify(profileJson(name), (k, v: unknown) => (k === 'defaultRoute' || k === 'mount' ? undefined : v)),
    ) as unknown,
  };
}

const mac = (n: number, port: number): MacAddress =>
  `52:54:00:7e:${port.toString(16).padStart(2, '0')}:${n.toString(16).padStart(2, '0')}` as MacAddress;

/** Every attribute the PF's driver can set, with values a fresh VF does not have. */
function vfNet(pfDriver: string | undefined, n: number, port: number): VfNetConfig {
  const no = vfCapabilities(pfDriver).unsupported;
  return {
    mac: mac(n, port),
    vlan: singleTag(100 + n),
    vlanQos: 3,
    ...(no.vlanProto8021ad ? {} : { vlanProto: '802.1ad' as const }),
    ...(no.spoofchk ? {} : { spoofchk: false }),
    ...(no.trust ? {} : { trust: true }),
    ...(no.linkState ? {} : { linkState: 'disable' as const }),
    ...(no.maxTxRate ? {} : { rate: { minTx: no.minTxRate ? 0 : 100, maxTx: 1000 } }),
  };
}

function deviceSet(devices: readonly PciDevice[]): HostdevRequest[] {
  const out: HostdevRequest[] = [];
  const base = { managed: true, stub: 'vfio-pci', assigned: true };
  const pfs = devices.filter((d) => (d.sriov?.numVfs ?? 0) > 0).slice(0, 2);
  for (const pf of pfs) {
    const vfs = pf.sriov?.vfs ?? [];
    const vf = vfs[Math.min(1, vfs.length - 1)];
    if (!vf) continue;
    const n = out.length;
    const uplinks = pf.netdevs.filter((d) => !d.representor);
    const request = { ...base, alias: `vf${n}`, address: vf };
    out.push(
      uplinks.length > 1
        ? { ...request, ports: uplinks.map((u) => ({ port: u.devPort + 1, net: vfNet(pf.driver, n, u.devPort + 1) })) }
        : { ...request, net: vfNet(pf.driver, n, 0) },
    );
  }
  const groups = new Map<number, PciDevice[]>();
  for (const d of devices) {
    if (d.physfn || d.headerType !== 'endpoint' || d.iommuGroup === undefined) continue;
    groups.set(d.iommuGroup, [...(groups.get(d.iommuGroup) ?? []), d]);
  }
  for (const members of groups.values()) {
    const endpoints = members.filter((d) => d.class >> 8 !== 0x0600); // host bridges stay
    if (endpoints.length === 0 || endpoints.some((d) => (d.sriov?.numVfs ?? 0) > 0)) continue;
    for (const d of endpoints) {
      const slotMates = endpoints.filter((o) => o.name.slice(0, -1) === d.name.slice(0, -1));
      const last = slotMates.length > 1 && slotMates[slotMates.length - 1] === d;
      out.push({ ...base, alias: `fn${out.length}`, address: d.address, assigned: !last });
    }
  }
  return out;
}

for (const name of listProfiles()) {
  test(`profile ${name}: prepare then release leaves the sim tree byte-identical`, async () => {
    const base = await mkdtemp(join(tmpdir(), `passthru-every-${name}-`));
    try {
      const host = join(base, 'host');
      await createSimHost(host, withoutHostUse(name));
      const kernel = await openSimHost(host);
      const devices = (await readInventory(kernel.sysfs)).devices;
      const requests = deviceSet(devices);
      // The VFs whose PF driver refuses a zero admin MAC (see above).
      const almostZero = requests.flatMap((r) => {
        const vf = devices.find((d) => formatPciAddress(d.address) === formatPciAddress(r.address))?.physfn;
        const pf = vf && devices.find((d) => formatPciAddress(d.address) === formatPciAddress(vf.pf));
        return pf && vfCapabilities(pf.driver).zeroMacEinval ? [{ pf: pf.name, vf: vf.index }] : [];
      });
      assert.ok(requests.length > 0, `profile ${name} gives no device to prepare`);
      const m = await HostdevManager.open(hostOps(kernel), join(base, 'state'), silentLogger());
      const before = await simSnapshot(host);
      const prepared = await m.prepare('bytes', requests);
      assert.equal(prepared.length, requests.length);
      assert.notDeepEqual(snapshotDiff(before, await simSnapshot(host)), [], 'the prepare changed the host');
      assert.deepEqual((await m.release('bytes')).sort(), requests.map((r) => r.alias).sort());
      const after = await simSnapshot(host);
      for (const [path, text] of after) {
        for (const { pf, vf } of almostZero) {
          if (!path.startsWith(`sim/netlink/${pf}`)) continue;
          const restored = text.replace(`{"vf":${vf},"mac":"${ALMOST_ZERO}"`, `{"vf":${vf},"mac":"${ZERO_MAC}"`);
          if (restored !== text && before.get(path) === restored) after.set(path, restored);
        }
      }
      assert.deepEqual(
        snapshotDiff(before, after),
        [],
        `after release, devices ${requests.map((r) => formatPciAddress(r.address)).join(' ')}`,
      );
    } finally {
      await rm(base, { recursive: true, force: true });
    }
  });
}
