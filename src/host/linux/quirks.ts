/**
 * What PF drivers do differently with VF attributes (peers-and-kernel.md C4/D5, libvirt's
 * virnetdev.c, the VM lab's igb measurements). The linux backend uses it to verify writes;
 * the device manager asks it how to restore an admin MAC.
 */
export interface DriverQuirks {
  /** The admin MAC reaches the VF through a VF reset done later: a read right after the write
   *  may show the old value, so verification polls. */
  readonly macAsync: boolean;
  /** An all-zero admin MAC is refused (EINVAL); libvirt then writes 02:00:00:00:00:00. */
  readonly zeroMacEinval: boolean;
  /** Clearing the VLAN when none is set answers EPERM (no embedded switch exposed): harmless. */
  readonly vlanZeroEperm: boolean;
  /** VF attributes may only be set while the PF netdev is up. libvirt refuses a down PF for
   *  every driver; unknown drivers keep that rule. igb takes MAC, VLAN, trust, an all-zero MAC
   *  and VLAN 0 with its PF down (VM lab, Debian 6.1). */
  readonly pfMustBeUp: boolean;
  /** Errnos for attributes the driver does not implement, as measured. */
  readonly unsupported: Readonly<
    Partial<Record<'vlanProto8021ad' | 'minTxRate' | 'linkState' | 'trust' | 'spoofchk', string>>
  >;
}

const DEFAULT: DriverQuirks = {
  macAsync: false,
  zeroMacEinval: false,
  vlanZeroEperm: false,
  pfMustBeUp: true,
  unsupported: {},
};

const TABLE: Record<string, Partial<DriverQuirks>> = {
  i40e: { macAsync: true, unsupported: { vlanProto8021ad: 'EPROTONOSUPPORT', minTxRate: 'EINVAL' } },
  ice: { macAsync: true, unsupported: { vlanProto8021ad: 'EPROTONOSUPPORT' } },
  // Measured in the VM lab on QEMU's igb (82576) with Debian 6.1's igb driver.
  igb: {
    pfMustBeUp: false,
    unsupported: { vlanProto8021ad: 'EPROTONOSUPPORT', minTxRate: 'EINVAL', linkState: 'EOPNOTSUPP' },
  },
  ixgbe: { unsupported: { vlanProto8021ad: 'EPROTONOSUPPORT', minTxRate: 'EINVAL' } },
  mlx4_core: { zeroMacEinval: true, unsupported: { minTxRate: 'EOPNOTSUPP' } },
  mlx5_core: { macAsync: false },
  bnxt_en: { vlanZeroEperm: true },
  enic: { vlanZeroEperm: true },
};

export function quirksOf(driver: string | undefined): DriverQuirks {
  return { ...DEFAULT, ...(driver === undefined ? {} : TABLE[driver]) };
}
