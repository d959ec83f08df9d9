/**
 * Builds the binary config space the sim writes as `config`, so that the inventory reads the
 * header type, FLR and ACS from bytes exactly as it does on a real host (host/pci-config.ts).
 */
export interface ConfigSpec {
  readonly vendor: number;
  readonly device: number;
  readonly class: number;
  readonly bridge?: { readonly primary: number; readonly secondary: number; readonly subordinate: number };
  readonly multifunction: boolean;
  readonly pcieType: 'endpoint' | 'root-port' | 'switch-upstream' | 'switch-downstream';
  readonly flr: boolean;
  /** PM capability without No_Soft_Reset: D3hot -> D0 resets the function. */
  readonly pmReset?: boolean;
  readonly link?: { readonly speed: number; readonly width: number; readonly port?: number };
  readonly acs: boolean;
  readonly sriov?: {
    readonly totalVfs: number;
    readonly numVfs: number;
    readonly offset: number;
    readonly stride: number;
    readonly vfDevice: number;
  };
}

const SPEED_CODE: Record<number, number> = { 2.5: 1, 5: 2, 8: 3, 16: 4, 32: 5, 64: 6 };
const PCIE_TYPE_CODE = { endpoint: 0, 'root-port': 4, 'switch-upstream': 5, 'switch-downstream': 6 } as const;

export function buildConfigSpace(spec: ConfigSpec): Buffer {
  const ext = spec.acs || spec.sriov !== undefined;
  const buf = Buffer.alloc(ext ? 4096 : 256);
  buf.writeUInt16LE(spec.vendor, 0x00);
  buf.writeUInt16LE(spec.device, 0x02);
  buf.writeUInt16LE(0x0406, 0x04); // memory space, bus master, INTx disabled
  buf.writeUInt16LE(0x0010, 0x06); // capability list present
  buf.writeUInt8(0x01, 0x08);
  buf.writeUInt8(spec.class & 0xff, 0x09);
  buf.writeUInt8((spec.class >> 8) & 0xff, 0x0a);
  buf.writeUInt8((spec.class >> 16) & 0xff, 0x0b);
  buf.writeUInt8((spec.bridge ? 1 : 0) | (spec.multifunction ? 0x80 : 0), 0x0e);
  if (spec.bridge) {
    buf.writeUInt8(spec.bridge.primary, 0x18);
    buf.writeUInt8(spec.bridge.secondary, 0x19);
    buf.writeUInt8(spec.bridge.subordinate, 0x1a);
  }
  buf.writeUInt8(0x40, 0x34);
  // PM at 0x40 with No_Soft_Reset set unless the profile says otherwise: as on most NICs,
  // D3hot gives no reset.
  buf.writeUInt8(0x01, 0x40);
  buf.writeUInt8(0x50, 0x41);
  buf.writeUInt16LE(0x0003, 0x42);
  buf.writeUInt16LE(spec.pmReset ? 0x0000 : 0x0008, 0x44);
  // PCIe at 0x50.
  buf.writeUInt8(0x10, 0x50);
  buf.writeUInt8(0x00, 0x51);
  buf.writeUInt16LE(0x0002 | (PCIE_TYPE_CODE[spec.pcieType] << 4), 0x52);
  buf.writeUInt32LE(spec.flr ? 1 << 28 : 0, 0x54);
  if (spec.link) {
    const code = SPEED_CODE[spec.link.speed] ?? 1;
    buf.writeUInt32LE((code | (spec.link.width << 4) | ((spec.link.port ?? 0) << 24)) >>> 0, 0x5c);
    buf.writeUInt16LE(code | (spec.link.width << 4), 0x62);
  }
  let next = 0x100;
  const caps: { id: number; size: number; fill: (at: number) => void }[] = [];
  if (spec.acs) {
    caps.push({
      id: 0x0d,
      size: 0x10,
      fill: (at) => {
        buf.writeUInt16LE(0x001f, at + 4);
        buf.writeUInt16LE(0x001d, at + 6);
      },
    });
  }
  const sriov = spec.sriov;
  if (sriov) {
    caps.push({
      id: 0x10,
      size: 0x40,
      fill: (at) => {
        buf.writeUInt16LE(sriov.numVfs > 0 ? 0x0009 : 0, at + 0x08);
        buf.writeUInt16LE(sriov.totalVfs, at + 0x0c);
        buf.writeUInt16LE(sriov.totalVfs, at + 0x0e);
        buf.writeUInt16LE(sriov.numVfs, at + 0x10);
        buf.writeUInt16LE(sriov.offset, at + 0x14);
        buf.writeUInt16LE(sriov.stride, at + 0x16);
        buf.writeUInt16LE(sriov.vfDevice, at + 0x1a);
      },
    });
  }
  caps.forEach((cap, i) => {
    const at = next;
    const following = i + 1 < caps.length ? at + cap.size : 0;
    buf.writeUInt32LE((cap.id | (1 << 16) | (following << 20)) >>> 0, at);
    cap.fill(at);
    next = following;
  });
  return buf;
}
