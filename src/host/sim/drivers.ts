/**
 * What each simulated driver does when it binds, and how a PF driver treats its VFs. Which VF
 * attributes a PF driver refuses, with which errno, comes from host/vf-caps.ts, the table the
 * linux backend and the planner use too (checked on igb in the VM lab, test/vmlab/; the rest
 * from the drivers' ndo_set_vf_* code).
 */
export interface SimDriver {
  readonly name: string;
  /** Binding creates the function's netdevs. */
  readonly net: boolean;
  /** A vfio driver: binding creates /dev/vfio/<group>. */
  readonly vfio: boolean;
  /** The driver implements .sriov_configure, so sriov_numvfs can be written. */
  readonly sriovConfigure: boolean;
  /** PF drivers: the VF attributes of IFLA_VFINFO_LIST they implement. */
  readonly vfAttrs?: VfAttrSupport;
}

/** How a simulated PF driver treats its VFs beyond the shared capability table
 *  (host/vf-caps.ts), which says what each driver refuses and with which errno. */
export interface VfAttrSupport {
  /** What a bound VF driver's netdev does when the admin MAC changes: 'live' (mlx5 resets the
   *  VF), 'async' (i40e resets it a little later: a read right after still shows the old
   *  MAC), 'reload' (igb: "Reload the VF driver to make this change effective"). */
  readonly macChange: 'live' | 'async' | 'reload';
  /** Defaults of a fresh VF's row. */
  readonly spoofchkDefault: boolean;
  /** igb gives every new VF a random MAC of its own (igb_vf_configure), and reports it in the
   *  VF table as if an admin had set it: seen in the VM lab. Others start at 00:00:00:00:00:00. */
  readonly randomMacAtCreate?: boolean;
}

const plain = (name: string, net = false): SimDriver => ({ name, net, vfio: false, sriovConfigure: false });

const DRIVERS: readonly SimDriver[] = [
  plain('pcieport'),
  plain('iavf', true),
  plain('igbvf', true),
  plain('tg3', true),
  plain('e1000e', true),
  plain('nouveau'),
  plain('snd_hda_intel'),
  plain('nvme'),
  plain('ahci'),
  { name: 'vfio-pci', net: false, vfio: true, sriovConfigure: false },
  {
    name: 'i40e',
    net: true,
    vfio: false,
    sriovConfigure: true,
    vfAttrs: { macChange: 'async', spoofchkDefault: true },
  },
  {
    name: 'ice',
    net: true,
    vfio: false,
    sriovConfigure: true,
    vfAttrs: { macChange: 'async', spoofchkDefault: true },
  },
  {
    name: 'igb',
    net: true,
    vfio: false,
    sriovConfigure: true,
    vfAttrs: { macChange: 'reload', spoofchkDefault: true, randomMacAtCreate: true },
  },
  {
    name: 'mlx4_core',
    net: true,
    vfio: false,
    sriovConfigure: true,
    vfAttrs: { macChange: 'reload', spoofchkDefault: false },
  },
  {
    name: 'mlx5_core',
    net: true,
    vfio: false,
    sriovConfigure: true,
    vfAttrs: { macChange: 'live', spoofchkDefault: false },
  },
];

export function simDriver(name: string): SimDriver {
  return DRIVERS.find((d) => d.name === name) ?? plain(name);
}
