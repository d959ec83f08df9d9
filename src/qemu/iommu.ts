import type { DomainDef } from '../conf/domain/types.ts';
import { PassthruError } from '../conf/error.ts';
import type { XmlElement } from '../conf/xml/tree.ts';
import type { DeviceProps } from './device-props.ts';

/**
 * The guest's vIOMMU, `<iommu model='intel'>`, as libvirt's qemuBuildIOMMUCommandLine gives it to
 * QEMU: `-device {"driver":"intel-iommu","id":"iommu0",...}` before the PCI controllers (the
 * DMA remapping unit must exist before the devices behind it), with `<driver>`'s switches as
 * QEMU's properties. It matters to passthru twice: a VF behind it gets its own DMA address space,
 * so each VFIO device may pin all guest RAM (memlock.ts), and QEMU refuses VFIO devices behind
 * an intel-iommu without caching-mode (checked here first, with the fix in the message).
 */

const CANNOT = 'CONFIG_UNSUPPORTED';

/** The domain's `<iommu>`, if it has one. */
export function iommuOf(def: DomainDef): XmlElement | undefined {
  return (def.devices.others ?? []).find((o) => o.kind === 'iommu')?.xml;
}

/** `<features><ioapic driver='qemu'/>`: the split irqchip interrupt remapping needs. */
export function splitIrqchip(def: DomainDef): boolean {
  const ioapic = def.features?.children.find((c) => c.kind === 'element' && c.name === 'ioapic');
  return ioapic?.kind === 'element' && ioapic.attrs.get('driver') === 'qemu';
}

/** The -device properties of the domain's vIOMMU, checked as libvirt checks them; undefined
 *  without one. `vfio`: whether any host device is given to QEMU as vfio-pci. */
export function iommuProps(def: DomainDef, q35: boolean, vfio: boolean): DeviceProps | undefined {
  const iommu = iommuOf(def);
  if (!iommu) return undefined;
  const line = { line: iommu.line };
  const model = iommu.attrs.get('model') ?? '';
  if (model !== 'intel') {
    throw new PassthruError(
      CANNOT,
      `IOMMU model '${model}' is not supported: passthru gives QEMU the 'intel' vIOMMU (q35 machines)`,
      line,
    );
  }
  if (!q35) {
    throw new PassthruError(CANNOT, "IOMMU device: 'intel' is only supported with Q35 machines", line);
  }
  const driver = iommu.children.find((c) => c.kind === 'element' && c.name === 'driver');
  const opt = (name: string): string | undefined => (driver?.kind === 'element' ? driver.attrs.get(name) : undefined);
  const intremap = opt('intremap');
  if (intremap === 'on' && !splitIrqchip(def)) {
    throw new PassthruError(CANNOT, "IOMMU interrupt remapping requires split I/O APIC (ioapic driver='qemu')", line);
  }
  if (opt('eim') === 'on' && intremap !== 'on') {
    throw new PassthruError(CANNOT, 'iommu eim requires interrupt remapping to be enabled', line);
  }
  if (vfio && opt('caching_mode') !== 'on') {
    throw new PassthruError(
      CANNOT,
      'a VFIO host device behind the intel vIOMMU needs its caching mode: QEMU refuses device assignment without it',
      { ...line, hint: "add <driver caching_mode='on'/> to <iommu model='intel'>" },
    );
  }
  const props: Record<string, string | number | boolean> = { driver: 'intel-iommu', id: 'iommu0' };
  if (intremap !== undefined) props['intremap'] = intremap;
  if (opt('caching_mode') !== undefined) props['caching-mode'] = opt('caching_mode') === 'on';
  if (opt('eim') !== undefined) props['eim'] = opt('eim') ?? '';
  if (opt('iotlb') !== undefined) props['device-iotlb'] = opt('iotlb') === 'on';
  const aw = opt('aw_bits');
  if (aw !== undefined) {
    if (aw !== '39' && aw !== '48') {
      throw new PassthruError(CANNOT, `IOMMU aw_bits '${aw}': the intel vIOMMU takes 39 or 48`, line);
    }
    props['aw-bits'] = Number(aw);
  }
  if (opt('dma_translation') !== undefined) props['dma-translation'] = opt('dma_translation') === 'on';
  return props as DeviceProps;
}
