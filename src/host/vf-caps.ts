import { PassthruError } from '../conf/error.ts';
import type { MacAddress } from '../conf/mac.ts';
import type { VfSettings } from './types.ts';

/**
 * What each PF driver does with VF attributes (peers-and-kernel.md C4/D5, libvirt's
 * virnetdev.c, the drivers' ndo_set_vf_* code, and the VM lab's measurements on real igb).
 * One table for everyone: the planner asks it to refuse a setting the driver cannot do before
 * anything changes, vf-apply.ts uses it to write and verify, and the sim kernel's drivers
 * answer by it, so the sim refuses what the real driver refuses with the same errno.
 */
export type VfAttribute =
  | 'vlanProto8021ad'
  | 'minTxRate'
  | 'maxTxRate'
  | 'linkState'
  | 'trust'
  | 'spoofchk'
  /** IFLA_VF_PORTS (802.1Qbh / 802.1Qbg port profiles): ndo_set_vf_port. */
  | 'portProfile';

export interface VfCapabilities {
  readonly driver: string | undefined;
  /** The admin MAC reaches the VF through a VF reset done later: a read right after the write
   *  may show the old value, so verification polls. */
  readonly macAsync: boolean;
  /** An all-zero admin MAC is refused (EINVAL); libvirt then writes 02:00:00:00:00:00. */
  readonly zeroMacEinval: boolean;
  /** VF attributes may only be set while the PF netdev is up. libvirt refuses a down PF for
   *  every driver; unknown drivers keep that rule. igb takes MAC, VLAN, trust, an all-zero MAC
   *  and VLAN 0 with its PF down (VM lab, Debian 6.1). */
  readonly pfMustBeUp: boolean;
  /** The errno the driver answers for each attribute it does not implement. */
  readonly unsupported: Readonly<Partial<Record<VfAttribute, string>>>;
}

const DEFAULT: Omit<VfCapabilities, 'driver'> = {
  macAsync: false,
  zeroMacEinval: false,
  pfMustBeUp: true,
  unsupported: {},
};

const TABLE: Readonly<Record<string, Partial<Omit<VfCapabilities, 'driver'>>>> = {
  i40e: { macAsync: true, unsupported: { vlanProto8021ad: 'EPROTONOSUPPORT', minTxRate: 'EINVAL' } },
  ice: { macAsync: true, unsupported: { vlanProto8021ad: 'EPROTONOSUPPORT' } },
  // Measured in the VM lab on QEMU 10's igb (82576) with Debian 6.1's igb driver: no
  // ndo_set_vf_link_state, min_tx_rate refused, no ndo_set_vf_port.
  igb: {
    pfMustBeUp: false,
    unsupported: {
      vlanProto8021ad: 'EPROTONOSUPPORT',
      minTxRate: 'EINVAL',
      linkState: 'EOPNOTSUPP',
      portProfile: 'EOPNOTSUPP',
    },
  },
  ixgbe: { unsupported: { vlanProto8021ad: 'EPROTONOSUPPORT', minTxRate: 'EINVAL' } },
  mlx4_core: { zeroMacEinval: true, unsupported: { minTxRate: 'EOPNOTSUPP' } },
  mlx5_core: {},
  // bnxt_en and enic answer EPERM on clearing VLAN 0 without an embedded switch: vf-apply.ts
  // ignores that for every driver, as libvirt does.
};

/** The capabilities of a PF driver; an unknown (or absent) driver gets the cautious defaults
 *  and is trusted to answer for itself. */
export function vfCapabilities(pfDriver: string | undefined): VfCapabilities {
  const known = pfDriver === undefined ? undefined : TABLE[pfDriver];
  return { driver: pfDriver, ...DEFAULT, ...known, unsupported: { ...known?.unsupported } };
}

export interface Refusal {
  readonly attribute: VfAttribute;
  /** The setting in the words of an error message ("link state enable"). */
  readonly words: string;
  readonly errno: string;
}

/** The settings of `s` the driver does not implement, in the kernel's order. `portProfile`
 *  asks about an 802.1Qbh/802.1Qbg association too. */
export function unsupportedSettings(caps: VfCapabilities, s: VfSettings, portProfile?: string): Refusal[] {
  const out: Refusal[] = [];
  const check = (attribute: VfAttribute, words: string): void => {
    const errno = caps.unsupported[attribute];
    if (errno !== undefined) out.push({ attribute, words, errno });
  };
  if (s.vlan?.proto === '802.1ad') check('vlanProto8021ad', 'VLAN protocol 802.1ad');
  if (s.rate !== undefined && s.rate.minTx > 0) check('minTxRate', `min TX rate ${s.rate.minTx} Mbps`);
  if (s.rate !== undefined && s.rate.maxTx > 0) check('maxTxRate', `max TX rate ${s.rate.maxTx} Mbps`);
  if (s.spoofchk !== undefined) check('spoofchk', `spoof check ${s.spoofchk ? 'on' : 'off'}`);
  if (s.linkState !== undefined) check('linkState', `link state ${s.linkState}`);
  if (s.trust !== undefined) check('trust', `trust ${s.trust ? 'on' : 'off'}`);
  if (portProfile !== undefined) check('portProfile', `port profile ${portProfile}`);
  return out;
}

/** Refuses, before anything is written, the settings the PF's driver cannot do, naming the
 *  driver. `who` names the VF ("VF 3 of PF enp6s0f0"). */
export function refuseUnsupported(caps: VfCapabilities, s: VfSettings, who: string, portProfile?: string): void {
  const refused = unsupportedSettings(caps, s, portProfile);
  if (refused.length === 0) return;
  const list = refused.map((r) => `${r.words} (${r.errno})`).join(', ');
  throw new PassthruError(
    'CONFIG_UNSUPPORTED',
    `${who}: PF driver ${caps.driver ?? '(none)'} cannot set ${list}; nothing was changed`,
    { hint: 'remove the setting from the definition, or use a VF of a PF whose driver supports it' },
  );
}

/** libvirt's "almost zero" admin MAC for drivers that refuse 00:00:00:00:00:00 (d5f4abef): it
 *  is locally administered and shows at a glance which VFs are free. */
export const ALMOST_ZERO_MAC = '02:00:00:00:00:00' as MacAddress;

/** The settings as separate requests, in do_setvfinfo's order (MAC, VLAN, rate, spoofchk,
 *  link state, trust), each with the words that name it in an error. libvirt also sends one
 *  attribute per request, so an error names exactly one setting. */
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
