import type { Sysfs } from './types.ts';

/**
 * The vfio variant driver for a device, as the kernel's "override_only" matching finds it
 * (peers-and-kernel.md D3): prefix the device's modalias with "vfio_" and look it up in
 * /lib/modules/$(uname -r)/modules.alias, e.g.
 *   alias vfio_pci:v000015B3d0000101Esv*sd*bc*sc*i* mlx5_vfio_pci
 * undefined when none matches (then plain vfio-pci is the stub).
 */
export async function vfioVariantDriver(sysfs: Sysfs, modalias: string | undefined): Promise<string | undefined> {
  if (modalias === undefined) return undefined;
  const table = await variantTable(sysfs);
  const wanted = `vfio_${modalias}`;
  return table.find((e) => e.pattern.test(wanted))?.module;
}

interface AliasEntry {
  readonly pattern: RegExp;
  readonly module: string;
}

/** The vfio_pci lines of modules.alias as patterns (fnmatch '*' and '?' only, as modprobe). */
export async function variantTable(sysfs: Sysfs): Promise<AliasEntry[]> {
  const release = (await sysfs.read('/proc/sys/kernel/osrelease'))?.trim();
  if (release === undefined) return [];
  const text = (await sysfs.read(`/lib/modules/${release}/modules.alias`)) ?? '';
  const out: AliasEntry[] = [];
  for (const line of text.split('\n')) {
    const m = /^alias (vfio_pci:\S+) (\S+)$/.exec(line);
    if (!m?.[1] || !m[2]) continue;
    const re = m[1]
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.');
    out.push({ pattern: new RegExp(`^${re}$`), module: m[2] });
  }
  return out;
}
