import { PassthruError } from '../../conf/error.ts';
import type { VfConfig, VfSettings } from '../types.ts';

/**
 * rtnetlink's VF operations on a PF, behind one interface with two implementations: the
 * `netlink` package (a netlink socket, no process per call) and iproute2 (`ip -j`), used when
 * the package cannot load. Both read with RTEXT_FILTER_VF | RTEXT_FILTER_SKIP_STATS and report
 * how many VFs the kernel says the PF has (IFLA_NUM_VF) beside the rows that arrived, so the
 * caller can see a truncated list (the nest's u16 length overflows at ~220 VFs).
 */
export interface VfDump {
  /** IFLA_NUM_VF; undefined when the kernel did not send it (iproute2 6.1's JSON lacks it). */
  readonly numVf: number | undefined;
  readonly vfs: readonly VfConfig[];
  /** The kernel or the tool said the list was cut short. */
  readonly truncated: boolean;
}

export interface Rtnl {
  readonly name: 'netlink' | 'iproute2';
  readVfs(pfNetdev: string): Promise<VfDump>;
  /** One attribute per request, as libvirt sends them, in the kernel's order. */
  setVf(pfNetdev: string, vf: number, settings: VfSettings): Promise<void>;
  close?(): void;
}

/** errno names from the texts iproute2 prints for them (strerror). */
const STRERROR: Record<string, string> = {
  'Operation not supported': 'EOPNOTSUPP',
  'Invalid argument': 'EINVAL',
  'Protocol not supported': 'EPROTONOSUPPORT',
  'Operation not permitted': 'EPERM',
  'No such device': 'ENODEV',
  'Numerical result out of range': 'ERANGE',
  'Device or resource busy': 'EBUSY',
  'Cannot assign requested address': 'EADDRNOTAVAIL',
  'Resource temporarily unavailable': 'EAGAIN',
  'Network is down': 'ENETDOWN',
  'Message too long': 'EMSGSIZE',
  'Permission denied': 'EACCES',
};

export function errnoFromText(text: string): string | undefined {
  for (const [msg, errno] of Object.entries(STRERROR)) if (text.includes(msg)) return errno;
  return undefined;
}

export function vfError(
  pfNetdev: string,
  vf: number,
  what: string,
  errno: string | undefined,
  detail = '',
): PassthruError {
  return new PassthruError(
    'HOST_FAILED',
    `cannot set ${what} on VF ${vf} of PF ${pfNetdev}${errno === undefined ? '' : ` (${errno})`}${detail === '' ? '' : `: ${detail}`}`,
    errno === undefined ? {} : { errno },
  );
}

/** The settings as separate requests, in do_setvfinfo's order (MAC, VLAN, rate, spoofchk,
 *  link state, trust), each with the words that name it in an error. */
export function splitSettings(s: VfSettings): { what: string; one: VfSettings }[] {
  const out: { what: string; one: VfSettings }[] = [];
  if (s.mac !== undefined) out.push({ what: `admin MAC ${s.mac}`, one: { mac: s.mac } });
  if (s.vlan !== undefined) {
    const proto = s.vlan.proto && s.vlan.proto !== '802.1Q' ? ` proto ${s.vlan.proto}` : '';
    out.push({ what: `VLAN ${s.vlan.id}${s.vlan.qos ? ` qos ${s.vlan.qos}` : ''}${proto}`, one: { vlan: s.vlan } });
  }
  if (s.rate !== undefined) out.push({ what: `tx rate ${s.rate.minTx}..${s.rate.maxTx} Mbps`, one: { rate: s.rate } });
  if (s.spoofchk !== undefined)
    out.push({ what: `spoofchk ${s.spoofchk ? 'on' : 'off'}`, one: { spoofchk: s.spoofchk } });
  if (s.linkState !== undefined) out.push({ what: `link state ${s.linkState}`, one: { linkState: s.linkState } });
  if (s.trust !== undefined) out.push({ what: `trust ${s.trust ? 'on' : 'off'}`, one: { trust: s.trust } });
  return out;
}
