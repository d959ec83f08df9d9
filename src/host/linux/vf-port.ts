import { PassthruError } from '../../conf/error.ts';
import type { PortRequest, PortResponse, VfPortProfile, VfPortState } from '../types.ts';

/**
 * IFLA_VF_PORTS { IFLA_VF_PORT { IFLA_PORT_* } } in the kernel's layouts (include/uapi/linux/
 * if_link.h), as the `netlink` package carries them: one raw buffer per IFLA_PORT_* attribute.
 * libvirt's virNetDevVPortProfileOpSetLink builds the same message.
 */
export interface RawPort {
  readonly vf?: Buffer; // IFLA_PORT_VF, u32
  readonly profile?: Buffer; // IFLA_PORT_PROFILE, NUL-terminated string (PORT_PROFILE_MAX 40)
  readonly vsiType?: Buffer; // IFLA_PORT_VSI_TYPE, struct ifla_port_vsi (8 bytes)
  readonly instanceUuid?: Buffer; // IFLA_PORT_INSTANCE_UUID, 16 bytes
  readonly hostUuid?: Buffer;
  readonly request?: Buffer; // IFLA_PORT_REQUEST, u8
  readonly response?: Buffer; // IFLA_PORT_RESPONSE, u16
}

const REQUESTS: readonly PortRequest[] = ['preassociate', 'preassociate-rr', 'associate', 'disassociate'];
const VDP: readonly PortResponse[] = [
  'success',
  'invalid-format',
  'insufficient-resources',
  'unused-vtid',
  'vtid-violation',
  'vtid-version-violation',
  'out-of-sync',
];
/** PORT_PROFILE_RESPONSE_SUCCESS = 0x100 and on. */
const PROFILE: readonly PortResponse[] = [
  'success',
  'in-progress',
  'invalid',
  'bad-state',
  'insufficient-resources',
  'error',
];

export function uuidBytes(uuid: string): Buffer {
  const hex = uuid.replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new PassthruError('INVALID_ARG', `invalid UUID '${uuid}'`);
  return Buffer.from(hex, 'hex');
}

function uuidText(b: Buffer): string {
  const h = b.subarray(0, 16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
};

export function encodePort(vf: number, p: VfPortProfile, request: PortRequest): RawPort {
  const common = {
    vf: u32(vf),
    instanceUuid: uuidBytes(p.instanceUuid),
    request: Buffer.from([REQUESTS.indexOf(request)]),
  };
  if (p.type === '802.1Qbh') return { ...common, profile: Buffer.from(`${p.profileid}\0`, 'utf8') };
  // struct ifla_port_vsi { __u8 vsi_mgr_id; __u8 vsi_type_id[3]; __u8 vsi_type_version; __u8 pad[3]; }
  // vsi_type_id is 24 bits, least significant byte first (libvirt's encoding).
  const vsi = Buffer.alloc(8);
  vsi.writeUInt8(p.managerid, 0);
  vsi.writeUInt8(p.typeid & 0xff, 1);
  vsi.writeUInt8((p.typeid >> 8) & 0xff, 2);
  vsi.writeUInt8((p.typeid >> 16) & 0xff, 3);
  vsi.writeUInt8(p.typeidversion, 4);
  return { ...common, vsiType: vsi };
}

export function responseOf(code: number): PortResponse | undefined {
  return code >= 0x100 ? PROFILE[code - 0x100] : VDP[code];
}

/** One IFLA_VF_PORT back to what it says; undefined when it lacks its VF number. */
export function decodePort(r: RawPort): (VfPortState & { readonly vf: number }) | undefined {
  if (!r.vf || r.vf.length < 4) return undefined;
  const request = r.request && r.request.length >= 1 ? REQUESTS[r.request.readUInt8(0)] : undefined;
  const response = r.response && r.response.length >= 2 ? responseOf(r.response.readUInt16LE(0)) : undefined;
  const instanceUuid = r.instanceUuid && r.instanceUuid.length >= 16 ? uuidText(r.instanceUuid) : '';
  let profile: VfPortProfile;
  if (r.vsiType && r.vsiType.length >= 5) {
    const v = r.vsiType;
    profile = {
      type: '802.1Qbg',
      managerid: v.readUInt8(0),
      typeid: v.readUInt8(1) | (v.readUInt8(2) << 8) | (v.readUInt8(3) << 16),
      typeidversion: v.readUInt8(4),
      instanceUuid,
    };
  } else {
    const text = r.profile ? r.profile.toString('utf8') : '';
    profile = { type: '802.1Qbh', profileid: text.replace(/\0.*$/s, ''), instanceUuid };
  }
  return {
    vf: r.vf.readUInt32LE(0),
    profile,
    request: request ?? 'associate',
    ...(response === undefined ? {} : { response }),
  };
}
