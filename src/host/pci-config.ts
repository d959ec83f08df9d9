/**
 * The PCI configuration space (sysfs `config`), parsed for what assignment needs: header type
 * (bridges are never assignable), the multifunction bit, and the capabilities behind reset and
 * isolation (PCIe with FLR and link, Advanced Features FLR, PM without soft reset, ACS,
 * SR-IOV). Offsets are from the PCI and PCIe base specs, as libvirt's virpci.c reads them.
 */
export type HeaderType = 'endpoint' | 'pci-bridge' | 'cardbus-bridge';

export type PcieType =
  | 'endpoint'
  | 'legacy-endpoint'
  | 'root-port'
  | 'switch-upstream'
  | 'switch-downstream'
  | 'pcie-to-pci-bridge'
  | 'pci-to-pcie-bridge'
  | 'integrated-endpoint'
  | 'root-complex-event-collector'
  | 'unknown';

export interface PcieLink {
  /** GT/s: 2.5, 5, 8, 16, 32, 64; undefined when the field holds no known speed. */
  readonly speed: number | undefined;
  readonly width: number;
  /** The link capability's port number. */
  readonly port?: number;
}

export interface PciConfig {
  readonly vendor: number;
  readonly device: number;
  readonly class: number;
  readonly headerType: HeaderType;
  readonly multifunction: boolean;
  /** Standard capability ids in list order (0x01 PM, 0x10 PCIe, 0x11 MSI-X, 0x13 AF ...). */
  readonly capabilities: readonly number[];
  /** Extended capability ids (0x0d ACS, 0x10 SR-IOV, 0x0e ARI ...); needs the 4 KiB space. */
  readonly extendedCapabilities: readonly number[];
  readonly pcie?: {
    readonly type: PcieType;
    readonly flr: boolean;
    readonly linkCap?: PcieLink;
    readonly linkSta?: PcieLink;
  };
  /** Advanced Features capability with FLR (conventional PCI devices). */
  readonly afFlr: boolean;
  /** PM capability without No_Soft_Reset: a D3hot->D0 transition resets the function. */
  readonly pmReset: boolean;
  readonly acs?: { readonly capability: number; readonly control: number };
  readonly sriov?: {
    readonly totalVfs: number;
    readonly initialVfs: number;
    readonly numVfs: number;
    readonly offset: number;
    readonly stride: number;
    readonly vfDevice: number;
  };
}

const CAP_PM = 0x01;
const CAP_PCIE = 0x10;
const CAP_AF = 0x13;
const EXT_ACS = 0x0d;
const EXT_SRIOV = 0x10;

const PCIE_TYPES: Record<number, PcieType> = {
  0: 'endpoint',
  1: 'legacy-endpoint',
  4: 'root-port',
  5: 'switch-upstream',
  6: 'switch-downstream',
  7: 'pcie-to-pci-bridge',
  8: 'pci-to-pcie-bridge',
  9: 'integrated-endpoint',
  10: 'root-complex-event-collector',
};

/** Link speed encodings of LinkCap/LinkSta bits 3:0. */
const SPEEDS: Record<number, number> = { 1: 2.5, 2: 5, 3: 8, 4: 16, 5: 32, 6: 64 };

function link(reg: number, withPort: boolean): PcieLink {
  const base = { speed: SPEEDS[reg & 0xf], width: (reg >>> 4) & 0x3f };
  return withPort ? { ...base, port: reg >>> 24 } : base;
}

/** Parses a config-space image; undefined when it is too short to hold a header. */
export function parsePciConfig(buf: Buffer): PciConfig | undefined {
  if (buf.length < 64) return undefined;
  const u8 = (o: number): number => (o < buf.length ? buf.readUInt8(o) : 0);
  const u16 = (o: number): number => (o + 1 < buf.length ? buf.readUInt16LE(o) : 0);
  const u32 = (o: number): number => (o + 3 < buf.length ? buf.readUInt32LE(o) : 0);

  const hdr = u8(0x0e);
  const headerType: HeaderType = (['endpoint', 'pci-bridge', 'cardbus-bridge'] as const)[hdr & 0x7f] ?? 'endpoint';
  const capabilities: number[] = [];
  const caps = new Map<number, number>();
  // Status bit 4: the capability list is valid. The walk is bounded: a looping list in a
  // broken device must not hang the inventory.
  if (u16(0x06) & 0x10) {
    let pos = u8(headerType === 'cardbus-bridge' ? 0x14 : 0x34) & 0xfc;
    for (let n = 0; pos >= 0x40 && n < 48; n++) {
      const id = u8(pos);
      capabilities.push(id);
      if (!caps.has(id)) caps.set(id, pos);
      pos = u8(pos + 1) & 0xfc;
    }
  }
  const extendedCapabilities: number[] = [];
  const ext = new Map<number, number>();
  if (buf.length >= 4096) {
    let pos = 0x100;
    for (let n = 0; pos >= 0x100 && n < 512; n++) {
      const header = u32(pos);
      if (header === 0 || header === 0xffffffff) break;
      const id = header & 0xffff;
      extendedCapabilities.push(id);
      if (!ext.has(id)) ext.set(id, pos);
      pos = (header >>> 20) & 0xffc;
    }
  }

  const pciePos = caps.get(CAP_PCIE);
  const pmPos = caps.get(CAP_PM);
  const afPos = caps.get(CAP_AF);
  const acsPos = ext.get(EXT_ACS);
  const sriovPos = ext.get(EXT_SRIOV);
  const pcie =
    pciePos === undefined
      ? undefined
      : (() => {
          const linkCap = u32(pciePos + 0x0c);
          const linkSta = u16(pciePos + 0x12);
          return {
            type: PCIE_TYPES[(u16(pciePos + 2) >>> 4) & 0xf] ?? 'unknown',
            flr: (u32(pciePos + 4) & (1 << 28)) !== 0,
            ...(linkCap === 0 ? {} : { linkCap: link(linkCap, true) }),
            ...(linkCap === 0 && linkSta === 0 ? {} : { linkSta: link(linkSta, false) }),
          };
        })();
  return {
    vendor: u16(0),
    device: u16(2),
    class: (u8(0x0b) << 16) | (u8(0x0a) << 8) | u8(0x09),
    headerType,
    multifunction: (hdr & 0x80) !== 0,
    capabilities,
    extendedCapabilities,
    ...(pcie === undefined ? {} : { pcie }),
    // AF capability: byte 3 bit 1 = FLR, bit 0 = transactions pending (libvirt checks both).
    afFlr: afPos !== undefined && (u8(afPos + 3) & 0x3) === 0x3,
    // PMCSR bit 3 No_Soft_Reset: set means D3hot->D0 keeps the state, so no reset.
    pmReset: pmPos !== undefined && (u16(pmPos + 4) & 0x8) === 0,
    ...(acsPos === undefined ? {} : { acs: { capability: u16(acsPos + 4), control: u16(acsPos + 6) } }),
    ...(sriovPos === undefined
      ? {}
      : {
          sriov: {
            initialVfs: u16(sriovPos + 0x0c),
            totalVfs: u16(sriovPos + 0x0e),
            numVfs: u16(sriovPos + 0x10),
            offset: u16(sriovPos + 0x14),
            stride: u16(sriovPos + 0x16),
            vfDevice: u16(sriovPos + 0x1a),
          },
        }),
  };
}

/** ACS flags libvirt requires on a downstream port (Source Validation, Request Redirect,
 *  Completion Redirect, Upstream Forwarding). */
export const ACS_REQUIRED = 0x01 | 0x04 | 0x08 | 0x10;
