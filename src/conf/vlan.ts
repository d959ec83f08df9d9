import { PassthruError } from './error.ts';

/** An 802.1Q VLAN id, 0..4095 as the kernel's IFLA_VF_VLAN takes it (0 = untagged). */
export type VlanId = number & { readonly __brand: 'VlanId' };

export interface VlanTag {
  readonly id: VlanId;
  /** libvirt's nativeMode for trunks: 'tagged' | 'untagged'. */
  readonly nativeMode?: 'tagged' | 'untagged';
  /** passthru: the 802.1p priority (PCP, 0..7) a VF puts in the tag (IFLA_VF_VLAN qos). */
  readonly qos?: number;
  /** passthru: the tag's protocol, 802.1Q (the default) or 802.1ad (a service tag, QinQ). */
  readonly protocol?: '802.1Q' | '802.1ad';
}

export interface Vlan {
  readonly tags: readonly VlanTag[];
  readonly trunk: boolean;
}

export function parseVlanId(text: string): VlanId {
  const n = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isInteger(n) || n < 0 || n > 4095) {
    throw new PassthruError('INVALID_ARG', `invalid VLAN id '${text}': must be an integer from 0 to 4095`);
  }
  return n as VlanId;
}

export function singleTag(id: number): Vlan {
  return { tags: [{ id: parseVlanId(String(id)) }], trunk: false };
}
