import { mkdirSync, readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { PassthruError } from '../../conf/error.ts';
import { buildConfigSpace } from './config-space.ts';
import { bindDevice, type Ctx, enableVfs, newCtx } from './devices.ts';
import { writeMountinfo, writeRoutes } from './host-files.ts';
import { parseProfile, profileJson } from './profile.ts';
import { type SimHostState, writeHostState, writeNetlink } from './state.ts';
import { placeDevices, subordinateBus } from './topology.ts';
import { addPciDevice, bdf, DEV_VFIO, ensureDriver, writeAttr } from './tree.ts';

export interface CreatedSimHost {
  readonly root: string;
  readonly profile: string;
  /** How many PCI functions the tree holds, VFs included. */
  readonly devices: number;
}

/**
 * Writes a sysfs-shaped tree for a profile under `dir` (which must be empty or absent), as
 * the kernel would show it after boot: devices enumerated, drivers bound, the profile's VFs
 * enabled. `profile` is a built-in profile's name, or a profile in its JSON form.
 */
export async function createSimHost(
  dir: string,
  profile: string | { readonly json: unknown },
): Promise<CreatedSimHost> {
  const root = resolve(dir);
  const json = typeof profile === 'string' ? profileJson(profile) : profile.json;
  const parsed = parseProfile(json, typeof profile === 'string' ? `profile '${profile}'` : 'profile');
  let entries: string[] = [];
  try {
    entries = readdirSync(root);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (entries.length > 0) {
    throw new PassthruError('INVALID_ARG', `cannot create a sim host in ${root}: the directory is not empty`, {
      hint: 'give a new or empty directory',
    });
  }
  mkdirSync(root, { recursive: true });

  const state: SimHostState = {
    version: 1,
    profileJson: json,
    profile: parsed,
    nextIommuGroup: 0,
    nextIfindex: 2,
    nextMac: 1,
    pendingMacs: [],
  };
  const ctx = newCtx(root, state);
  writeAttr(root, 'sys/bus/pci/drivers_probe', '', 0o200);
  writeAttr(root, 'sys/bus/pci/drivers_autoprobe', '1');
  writeAttr(root, 'sys/bus/pci/rescan', '', 0o200);
  mkdirSync(`${root}/sys/kernel/iommu_groups`, { recursive: true });
  mkdirSync(`${root}/sys/class/net`, { recursive: true });
  for (const [node, cpus] of (parsed.numaCpus ?? []).entries())
    writeAttr(root, `sys/devices/system/node/node${node}/cpulist`, `${cpus}\n`);
  const placed = placeDevices(parsed);
  const drivers = new Set(parsed.drivers);
  for (const p of placed) {
    if (p.spec.driver) drivers.add(p.spec.driver);
    if (p.spec.sriov) drivers.add(p.spec.sriov.vfDriver);
  }
  for (const d of drivers) ensureDriver(root, d);
  if (drivers.has('vfio-pci')) writeAttr(root, `${DEV_VFIO}/vfio`, '', 0o666);

  boot(ctx, placed);
  writeRoutes(ctx);
  writeMountinfo(root, parsed);
  await writeHostState(root, state);
  for (const t of ctx.tables.values()) await writeNetlink(root, t);
  return { root, profile: parsed.name, devices: countDevices(ctx) };
}

function boot(ctx: Ctx, placed: ReturnType<typeof placeDevices>): void {
  const groups = new Map<string, number>();
  let next = 0;
  for (const p of placed) {
    const label = p.spec.iommuGroup;
    let group = label === undefined ? undefined : groups.get(label);
    if (group === undefined) {
      group = next++;
      if (label !== undefined) groups.set(label, group);
    }
    const s = p.spec;
    addPciDevice(ctx.root, {
      address: p.address,
      dir: p.dir,
      vendor: s.vendor,
      device: s.device,
      class: s.class,
      numaNode: s.numaNode ?? -1,
      iommuGroup: group,
      config: buildConfigSpace({
        vendor: s.vendor,
        device: s.device,
        class: s.class,
        ...(s.kind === 'endpoint'
          ? {}
          : {
              bridge: { primary: p.address.bus, secondary: s.secondaryBus ?? 0, subordinate: subordinateBus(s) },
            }),
        multifunction: s.multifunction ?? false,
        pcieType: s.kind,
        flr: s.flr ?? false,
        pmReset: s.pmReset ?? false,
        ...(s.link ? { link: s.link } : {}),
        acs: s.acs ?? false,
        ...(s.sriov
          ? {
              sriov: {
                totalVfs: s.sriov.totalVfs,
                numVfs: 0,
                offset: s.sriov.offset,
                stride: s.sriov.stride,
                vfDevice: s.sriov.vfDevice,
              },
            }
          : {}),
      }),
    });
    if (s.sriov) {
      writeAttr(ctx.root, `${p.dir}/sriov_totalvfs`, String(s.sriov.totalVfs), 0o444);
      writeAttr(ctx.root, `${p.dir}/sriov_numvfs`, '0');
      writeAttr(ctx.root, `${p.dir}/sriov_offset`, String(s.sriov.offset), 0o444);
      writeAttr(ctx.root, `${p.dir}/sriov_stride`, String(s.sriov.stride), 0o444);
      writeAttr(ctx.root, `${p.dir}/sriov_vf_device`, s.sriov.vfDevice.toString(16), 0o444);
      writeAttr(ctx.root, `${p.dir}/sriov_drivers_autoprobe`, s.sriov.autoprobe === false ? '0' : '1');
    }
    if (s.driver) bindDevice(ctx, bdf(p.address), s.driver);
  }
  ctx.state.nextIommuGroup = next;
  for (const p of placed) {
    if (p.spec.sriov && p.spec.sriov.numVfs > 0 && p.spec.driver) enableVfs(ctx, bdf(p.address), p.spec.sriov.numVfs);
  }
}

function countDevices(ctx: Ctx): number {
  return readdirSync(`${ctx.root}/sys/bus/pci/devices`).length;
}
