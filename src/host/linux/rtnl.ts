import { PassthruError } from '../../conf/error.ts';
import type { PortRequest, VfConfig, VfPortProfile, VfPortState, VfSettings } from '../types.ts';

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
  /** IFLA_VF_PORTS: only over a netlink socket (ip has no command for port profiles). */
  setVfPort?(pfNetdev: string, vf: number, profile: VfPortProfile, request: PortRequest): Promise<void>;
  readVfPorts?(pfNetdev: string): Promise<readonly (VfPortState & { readonly vf: number })[]>;
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
