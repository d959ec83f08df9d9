import { PassthruError } from '../conf/error.ts';
import { formatPciAddress } from '../conf/pci-address.ts';
import { describeProfile } from '../host/port-profile.ts';
import { pfDownError } from '../host/vf-apply.ts';
import { refuseUnsupported, vfCapabilities } from '../host/vf-caps.ts';
import { isVfioDriver, type DeviceFacts, type VfFacts } from './facts.ts';
import { EMPTY_VIEW, type HostView, refuseDuplicateMacs, refuseHostUse, type WantedMac } from './guards.ts';
import type { Holder } from './leases.ts';
import { checkMultifunction } from './multifunction.ts';
import type { HostdevRequest, VfNetConfig } from './request.ts';
import type { VfSettings } from '../host/types.ts';
import type { Step } from './steps.ts';

/**
 * Turns "give these devices to domain D" into checks and an ordered list of steps. Pure: the
 * facts about the host and who holds what (`holder`: bdf -> domain) are read before, so every
 * refusal happens before anything on the host changes.
 */
export function planPrepare(
  domain: string,
  requests: readonly HostdevRequest[],
  facts: ReadonlyMap<string, DeviceFacts | undefined>,
  holder: Holder,
  view: HostView = EMPTY_VIEW,
): Step[] {
  const wanted = new Map<string, HostdevRequest>();
  for (const r of requests) {
    const bdf = formatPciAddress(r.address);
    const twin = wanted.get(bdf);
    if (twin) {
      throw new PassthruError(
        'XML_INVALID',
        `PCI device ${bdf} is given twice in domain ${domain} (${twin.alias} and ${r.alias})`,
      );
    }
    wanted.set(bdf, r);
  }

  // First: a missing function is named as such, not as a group peer left on the host.
  checkMultifunction(domain, wanted, facts, holder);
  for (const [bdf, r] of wanted) {
    const f = facts.get(bdf);
    checkOne(domain, bdf, r, f, wanted, holder);
    // Only a device still on a host driver is taken from the host here.
    if (f && r.managed && !isVfioDriver(f.driver)) refuseHostUse(bdf, f, view.hostUse);
  }
  refuseDuplicateMacs(domain, wantedMacs(wanted, facts), view.adminMacs, holder);

  const saves: Step[] = [];
  const binds: Step[] = [];
  const resets: Step[] = [];
  const sets: Step[] = [];
  const ports: Step[] = [];
  for (const [bdf, r] of wanted) {
    const vf = facts.get(bdf)?.vf;
    const driver = facts.get(bdf)?.driver;
    if (r.managed) {
      // What the device is bound to now is known before anything runs, so the undo of a step
      // that was in flight when the daemon died is never a guess.
      binds.push({
        kind: 'bind-stub',
        alias: r.alias,
        address: bdf,
        stub: r.stub,
        changed: driver !== r.stub,
        ...(driver === undefined ? {} : { previousDriver: driver }),
      });
    }
    // A non-VF device is reset once detached and again before its host driver takes it back.
    if (!vf) resets.push({ kind: 'reset-device', alias: r.alias, address: bdf });
    for (const { pfNetdev, net } of vf ? vfTargets(r, vf) : []) {
      const at = { alias: r.alias, address: bdf, pfNetdev, vf: vf?.index ?? 0 };
      saves.push({ kind: 'save-vf-config', ...at });
      sets.push({ kind: 'set-vf-config', ...at, settings: vfSettings(net) });
      if (net.portProfile)
        ports.push({ kind: 'associate-port', ...at, profile: net.portProfile, incoming: r.incoming === true });
    }
  }
  // Save before detaching, while the VF's own netdev can still be read (libvirt cceada57);
  // reset after detaching (so release resets before the host driver is back); program MAC/VLAN
  // after the VF sits on vfio-pci; associate port profiles last, with the MAC in place (libvirt
  // sends the MAC in the association request).
  return [...saves, ...binds, ...resets, ...sets, ...ports];
}

/** The MACs the requests program, each with the VF port it goes on. */
export function wantedMacs(
  wanted: ReadonlyMap<string, HostdevRequest>,
  facts: ReadonlyMap<string, DeviceFacts | undefined>,
): WantedMac[] {
  const out: WantedMac[] = [];
  for (const [bdf, r] of wanted) {
    const vf = facts.get(bdf)?.vf;
    for (const { pfNetdev, net } of vf ? vfTargets(r, vf) : []) {
      if (net.mac !== undefined) out.push({ mac: net.mac, alias: r.alias, address: bdf, pfNetdev });
    }
  }
  return out;
}

/** The PF netdevs a request programs the VF through, each with what it gets: the uplink for an
 *  interface, port N's netdev (dev_port N-1) for each `<netdev port='N'>`. */
function vfTargets(r: HostdevRequest, vf: VfFacts): { pfNetdev: string; net: VfNetConfig }[] {
  const out: { pfNetdev: string; net: VfNetConfig }[] = [];
  if (r.net && vf.pfNetdev !== undefined) out.push({ pfNetdev: vf.pfNetdev, net: r.net });
  for (const p of r.ports ?? []) {
    const netdev = vf.pfPorts?.find((n) => n.devPort === p.port - 1)?.name;
    if (netdev !== undefined) out.push({ pfNetdev: netdev, net: p.net });
  }
  return out;
}

/** The request in rtnetlink's terms. The VLAN is always set: id 0 clears a tag the VF kept. */
function vfSettings(net: VfNetConfig): VfSettings {
  return {
    ...(net.mac ? { mac: net.mac } : {}),
    vlan: {
      id: net.vlan?.tags[0]?.id ?? 0,
      ...(net.vlanQos === undefined ? {} : { qos: net.vlanQos }),
      ...(net.vlanProto === undefined ? {} : { proto: net.vlanProto }),
    },
    ...(net.spoofchk === undefined ? {} : { spoofchk: net.spoofchk }),
    ...(net.trust === undefined ? {} : { trust: net.trust }),
    ...(net.linkState === undefined ? {} : { linkState: net.linkState }),
    ...(net.rate === undefined ? {} : { rate: net.rate }),
  };
}

/** `<netdev port='N'>`: every port named must be one the VF has. */
function checkPorts(bdf: string, r: HostdevRequest, vf: VfFacts): void {
  const have = (vf.pfPorts ?? []).map((p) => p.devPort + 1);
  const missing = (r.ports ?? []).filter((p) => !have.includes(p.port)).map((p) => p.port);
  if (missing.length === 0) return;
  throw new PassthruError(
    'CONFIG_UNSUPPORTED',
    `${r.alias}: VF ${bdf} has no port ${missing.join(', ')}: it has ${have.length === 1 ? 'port' : 'ports'} ${have.join(', ') || 'none'}`,
    { hint: "a <netdev port='N'> names the PF netdev whose dev_port is N-1" },
  );
}

/** What must hold before anything changes: one VLAN tag, no VLAN beside a port profile (libvirt's
 *  rule and words), every attribute one the PF's driver can set, the PF up where it must be. */
function checkVfNet(bdf: string, alias: string, pfNetdev: string, net: VfNetConfig, vf: VfFacts): void {
  const vlan = net.vlan;
  if (vlan && (vlan.trunk || vlan.tags.length > 1)) {
    throw new PassthruError(
      'CONFIG_UNSUPPORTED',
      `vlan trunking is not supported by SR-IOV network devices (${alias})`,
    );
  }
  if (vlan && net.portProfile) {
    throw new PassthruError(
      'CONFIG_UNSUPPORTED',
      `direct setting of the vlan tag is not allowed for hostdev devices using ${net.portProfile.type} mode`,
    );
  }
  const caps = vfCapabilities(vf.pfDriver);
  const who = `${alias}: VF ${vf.index} (${bdf}) of PF ${pfNetdev}`;
  refuseUnsupported(caps, vfSettings(net), who, net.portProfile && describeProfile(net.portProfile));
  if (caps.pfMustBeUp && vf.pfUp?.[pfNetdev] === false) throw pfDownError(pfNetdev, vf.index);
}

function name(bdf: string, f: DeviceFacts | undefined): string {
  return f?.vf?.pfNetdev ? `VF ${bdf} of PF ${f.vf.pfNetdev}` : `PCI device ${bdf}`;
}

function checkOne(
  domain: string,
  bdf: string,
  r: HostdevRequest,
  f: DeviceFacts | undefined,
  wanted: ReadonlyMap<string, HostdevRequest>,
  holderOf: Holder,
): void {
  if (!f) {
    throw new PassthruError(
      'NO_DEVICE',
      `PCI device ${bdf} (${r.alias} of domain ${domain}) does not exist on this host`,
      {
        hint: "list the host's devices with 'passthru nodedev-list --cap pci'",
      },
    );
  }
  if (!f.endpoint) {
    throw new PassthruError('DEVICE_NOT_ASSIGNABLE', `Non-endpoint PCI device ${bdf} cannot be assigned to guests`);
  }
  const holder = holderOf(bdf);
  if (holder !== undefined) {
    throw new PassthruError('DEVICE_IN_USE', `${name(bdf, f)} is in use by domain ${holder}`);
  }
  for (const peer of f.groupPeers) {
    const peerBdf = formatPciAddress(peer.address);
    const peerHolder = holderOf(peerBdf);
    if (peerHolder !== undefined && peerHolder !== domain) {
      throw new PassthruError(
        'DEVICE_IN_USE',
        `${name(bdf, f)} shares IOMMU group ${f.iommuGroup} with ${peerBdf}, which is in use by domain ${peerHolder}`,
        { hint: 'the functions of one IOMMU group can only be given to one domain' },
      );
    }
    // VFIO needs every endpoint of the group on a vfio driver or unbound; we never take a
    // device from the host that the domain did not ask for.
    if (peer.endpoint && !wanted.has(peerBdf) && peer.driver !== undefined && !isVfioDriver(peer.driver)) {
      throw new PassthruError(
        'DEVICE_NOT_ASSIGNABLE',
        `${name(bdf, f)} shares IOMMU group ${f.iommuGroup} with ${peerBdf} (driver ${peer.driver}), which domain ${domain} does not include`,
        { hint: `add ${peerBdf} to the domain too (with <address type='unassigned'/> if the guest should not see it)` },
      );
    }
  }
  if (r.net || r.ports) {
    if (!f.vf) {
      throw new PassthruError(
        'DEVICE_NOT_ASSIGNABLE',
        `Interface type hostdev is currently supported on SR-IOV Virtual Functions only: ${bdf} (${r.alias}) is not a VF`,
      );
    }
    if (f.vf.pfNetdev === undefined) {
      throw new PassthruError(
        'DEVICE_NOT_ASSIGNABLE',
        `The PF ${formatPciAddress(f.vf.pf)} of VF ${bdf} has no network device, so its admin MAC and VLAN cannot be set`,
      );
    }
    checkPorts(bdf, r, f.vf);
    for (const { pfNetdev, net } of vfTargets(r, f.vf)) checkVfNet(bdf, r.alias, pfNetdev, net, f.vf);
  }
  if (!r.managed && !isVfioDriver(f.driver)) {
    throw new PassthruError(
      'OPERATION_INVALID',
      `Unmanaged PCI device ${bdf} must be manually detached from the host (it is bound to ${f.driver ?? 'no driver'})`,
      { hint: `run 'passthru nodedev-detach ${bdf}' first, or set managed='yes'` },
    );
  }
}
