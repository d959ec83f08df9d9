import { createSimHost } from '../../src/host/sim/create.ts';
import { profileJson } from '../../src/host/sim/profile.ts';
import { parseMac } from '../../src/conf/mac.ts';
import { parsePciAddress } from '../../src/conf/pci-address.ts';
import { singleTag } from '../../src/conf/vlan.ts';
import type { HostdevRequest } from '../../src/hostdev/request.ts';

/**
 * The crash tier's host and domain: the rich domain of issue 7 on one sim host made of three
 * built-in profiles (their root ports sit on different slots and buses):
 *   mellanox-cx5            three VFs: MAC; VLAN + QoS + 802.1ad; trust + spoofchk + rates + link
 *   mellanox-cx3-dualport   a VF with a netdev per port, both ports set (<netdev port='1|2'>)
 *   mellanox-cx5 (again)    a VF with an 802.1Qbh port profile
 *   broadcom-bcm5719        a four-function card, one function assigned='no'
 */
const PROFILES = ['mellanox-cx5', 'mellanox-cx3-dualport', 'broadcom-bcm5719'] as const;

interface ProfileJson {
  readonly numaNodes: number;
  readonly drivers: readonly string[];
  readonly devices: readonly unknown[];
}

export function richHostProfile(): { json: unknown } {
  const parts = PROFILES.map((p) => profileJson(p) as ProfileJson);
  return {
    json: {
      name: 'crash-rich',
      description: `the crash tier's host: ${PROFILES.join(' + ')}`,
      numaNodes: Math.max(...parts.map((p) => p.numaNodes)),
      drivers: [...new Set(parts.flatMap((p) => p.drivers))],
      devices: parts.flatMap((p) => p.devices),
    },
  };
}

export async function createRichHost(dir: string): Promise<void> {
  await createSimHost(dir, richHostProfile());
}

export const DOMAIN = 'rich';

const vfio = { managed: true, stub: 'vfio-pci', assigned: true } as const;

/** The rich domain's devices, in the order a definition would list them. Addresses follow the
 *  profiles: cx5 PF 0000:3b:00.0 (VFs from 3b:00.2), cx3 PF 0000:04:00.0 (VFs from 04:00.1),
 *  BCM5719 0000:02:00.0-3. */
export function richRequests(): HostdevRequest[] {
  const a = parsePciAddress;
  return [
    { ...vfio, alias: 'hostdev0', address: a('0000:3b:00.2'), net: { mac: parseMac('52:54:00:c5:00:01') } },
    {
      ...vfio,
      alias: 'hostdev1',
      address: a('0000:3b:00.3'),
      net: { mac: parseMac('52:54:00:c5:00:02'), vlan: singleTag(100), vlanQos: 3, vlanProto: '802.1ad' },
    },
    {
      ...vfio,
      alias: 'hostdev2',
      address: a('0000:3b:00.4'),
      net: {
        mac: parseMac('52:54:00:c5:00:03'),
        trust: true,
        spoofchk: false,
        rate: { minTx: 100, maxTx: 1000 },
        linkState: 'enable',
      },
    },
    // The dual-port VF: <netdev port='1'> and <netdev port='2'>, each on its PF netdev.
    {
      ...vfio,
      alias: 'hostdev3',
      address: a('0000:04:00.1'),
      ports: [
        { port: 1, net: { mac: parseMac('52:54:00:c3:00:01'), vlan: singleTag(7) } },
        { port: 2, net: { mac: parseMac('52:54:00:c3:00:02'), vlan: singleTag(8), trust: true } },
      ],
    },
    { ...vfio, alias: 'hostdev4', address: a('0000:02:00.0') },
    { ...vfio, alias: 'hostdev5', address: a('0000:02:00.1') },
    { ...vfio, alias: 'hostdev6', address: a('0000:02:00.2') },
    { ...vfio, alias: 'hostdev7', address: a('0000:02:00.3'), assigned: false },
    {
      ...vfio,
      alias: 'hostdev8',
      address: a('0000:3b:00.5'),
      net: {
        mac: parseMac('52:54:00:c5:00:04'),
        portProfile: { type: '802.1Qbh', profileid: 'finance', instanceUuid: 'c7a5fdbd-edaf-9455-926a-d65c16db1809' },
      },
    },
  ];
}
