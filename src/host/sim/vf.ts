import { basename, dirname } from 'node:path';
import { PassthruError } from '../../conf/error.ts';
import { isMulticastMac, type MacAddress, ZERO_MAC } from '../../conf/mac.ts';
import type { PortRequest, VfPortProfile, VfPortState, VfSettings } from '../types.ts';
import { vfCapabilities } from '../vf-caps.ts';
import { type Ctx, setRow, table, vfIdentity } from './devices.ts';
import { simDriver } from './drivers.ts';
import type { FaultRule } from './faults.ts';
import type { SimPort, SwitchAnswer, VfRow } from './state.ts';
import { BUS_DEVICES, CLASS_NET, driverOf, list, readAttr, resolveLink, writeAttr } from './tree.ts';

/**
 * The sim kernel's VF side of rtnetlink on a PF: IFLA_VFINFO_LIST writes (one attribute per
 * request, with the errno the PF's driver answers, from host/vf-caps.ts) and IFLA_VF_PORTS,
 * where the sim plays the switch behind the PF (sim/switch.json says how it answers).
 */
export function fail(errno: string, message: string): PassthruError {
  return new PassthruError('HOST_FAILED', `${message} (${errno})`, { errno });
}

/** A PF netdev's function and port; a switchdev representor is not a PF port. */
export function pfOfNetdev(ctx: Ctx, pfNetdev: string): { pf: string; port: number } {
  const dev = resolveLink(ctx.root, `${CLASS_NET}/${pfNetdev}`);
  if (dev === undefined)
    throw new PassthruError('NO_DEVICE', `network device '${pfNetdev}' does not exist on this host`);
  if (/^pf\d+vf\d+$/.test(readAttr(ctx.root, `${dev}/phys_port_name`) ?? '')) {
    throw fail(
      'EOPNOTSUPP',
      `${pfNetdev} is a switchdev VF representor, not a PF port: VFs are configured through the PF uplink`,
    );
  }
  const pf = basename(dirname(dirname(dev)));
  if (vfIdentity(ctx, pf)) throw fail('EOPNOTSUPP', `${pfNetdev} is the netdev of a VF, not of a PF`);
  return { pf, port: Number(readAttr(ctx.root, `${dev}/dev_port`) ?? 0) };
}

/** The PF, its driver's capabilities and the VF's row; EOPNOTSUPP/EINVAL as the kernel says. */
function vfOf(ctx: Ctx, pfNetdev: string, vf: number) {
  const { pf, port } = pfOfNetdev(ctx, pfNetdev);
  const driverName = driverOf(ctx.root, pf);
  const support = driverName === undefined ? undefined : simDriver(driverName).vfAttrs;
  if (!support) throw fail('EOPNOTSUPP', `PF ${pfNetdev} (${pf}) does not support VF configuration`);
  const t = table(ctx, pf, port);
  const row = t.vfs.find((r) => r.vf === vf);
  if (!row) throw fail('EINVAL', `PF ${pfNetdev} has no VF ${vf} (it has ${t.vfs.length} VFs)`);
  return { pf, port, driverName, support, caps: vfCapabilities(driverName), row };
}

/** One IFLA_VF_INFO attribute (the caller splits a request, as rtnetlink users do). */
export function setVfAttribute(ctx: Ctx, pfNetdev: string, vf: number, s: VfSettings, fault?: FaultRule): void {
  const { pf, port, driverName, support, caps, row } = vfOf(ctx, pfNetdev, vf);
  const who = `VF ${vf} of PF ${pfNetdev}`;
  const refuse = (errno: string | undefined, what: string): void => {
    if (errno !== undefined) throw fail(errno, `cannot set ${what} on ${who}: driver ${driverName ?? '?'} refuses it`);
  };
  let next: VfRow = { ...row };
  if (s.mac !== undefined) {
    if (isMulticastMac(s.mac))
      throw fail('EINVAL', `cannot set admin MAC ${s.mac} on ${who}: it is a multicast address`);
    if (s.mac === ZERO_MAC) refuse(caps.zeroMacEinval ? 'EINVAL' : undefined, 'an all-zero admin MAC');
    if (fault?.lateMs !== undefined) {
      // Accepted; the table shows it once the driver's VF reset is done.
      ctx.state.lateMacs = [
        ...(ctx.state.lateMacs ?? []),
        { pf, port, vf, mac: s.mac, due: Date.now() + fault.lateMs },
      ];
    } else next = { ...next, mac: s.mac };
    macChanged(ctx, pf, port, vf, s.mac, support.macChange);
  }
  if (s.vlan !== undefined) {
    const { id, qos = 0, proto = '802.1Q' } = s.vlan;
    if (id < 0 || id > 4095 || qos < 0 || qos > 7) throw fail('EINVAL', `cannot set VLAN ${id} qos ${qos} on ${who}`);
    if (proto === '802.1ad') refuse(caps.unsupported.vlanProto8021ad, 'VLAN protocol 802.1ad');
    // 802.1ad needs a tag to carry (the kernel's do_setvfinfo passes it on; drivers refuse 0).
    if (proto === '802.1ad' && id === 0)
      throw fail('EINVAL', `cannot set VLAN protocol 802.1ad without a VLAN on ${who}`);
    next = { ...next, vlan: id, qos, vlanProto: proto };
    if (proto !== '802.1ad') delete (next as { vlanProto?: string }).vlanProto;
  }
  if (s.rate !== undefined) {
    if (s.rate.minTx > 0) refuse(caps.unsupported.minTxRate, `min_tx_rate ${s.rate.minTx}`);
    if (s.rate.maxTx > 0) refuse(caps.unsupported.maxTxRate, `max_tx_rate ${s.rate.maxTx}`);
    if (s.rate.maxTx !== 0 && s.rate.minTx > s.rate.maxTx)
      throw fail('EINVAL', `cannot set min_tx_rate above max_tx_rate on ${who}`);
    next = { ...next, minTxRate: s.rate.minTx, maxTxRate: s.rate.maxTx };
  }
  if (s.spoofchk !== undefined) {
    refuse(caps.unsupported.spoofchk, 'spoofchk');
    next = { ...next, spoofchk: s.spoofchk };
  }
  if (s.linkState !== undefined) {
    refuse(caps.unsupported.linkState, `link state ${s.linkState}`);
    next = { ...next, linkState: s.linkState };
  }
  if (s.trust !== undefined) {
    refuse(caps.unsupported.trust, 'trust');
    next = { ...next, trust: s.trust };
  }
  setRow(ctx, pf, next, port);
}

/** Admin MACs accepted with a delay land in the table once they are due. */
export function applyLateMacs(ctx: Ctx): void {
  const late = ctx.state.lateMacs ?? [];
  if (late.length === 0) return;
  const now = Date.now();
  for (const m of late.filter((l) => l.due <= now)) {
    const row = table(ctx, m.pf, m.port).vfs.find((r) => r.vf === m.vf);
    if (row) setRow(ctx, m.pf, { ...row, mac: m.mac }, m.port);
  }
  const left = late.filter((l) => l.due > now);
  if (left.length > 0) ctx.state.lateMacs = left;
  else delete ctx.state.lateMacs;
}

/** mlx5 resets the VF on an admin MAC change, so a bound VF driver comes back with it at once;
 *  i40e does the same a little later; igb and mlx4 wait for the VF driver to reload. */
function macChanged(
  ctx: Ctx,
  pf: string,
  port: number,
  vf: number,
  mac: MacAddress,
  mode: 'live' | 'async' | 'reload',
): void {
  const vfDir = resolveLink(ctx.root, `${BUS_DEVICES}/${pf}/virtfn${vf}`);
  if (vfDir === undefined || mac === ZERO_MAC || mode === 'reload') return;
  for (const ifname of list(ctx.root, `${vfDir}/net`)) {
    const file = `${vfDir}/net/${ifname}/address`;
    if (Number(readAttr(ctx.root, `${vfDir}/net/${ifname}/dev_port`) ?? 0) !== port) continue;
    if (mode === 'live') writeAttr(ctx.root, file, mac, 0o444);
    else ctx.state.pendingMacs.push({ file, mac });
  }
}

// ---- IFLA_VF_PORTS: the switch behind the PF ----

/** The key a switch answer is chosen by: the 802.1Qbh profile name, or the 802.1Qbg VSI type. */
export function portProfileKey(p: VfPortProfile): string {
  return p.type === '802.1Qbh' ? p.profileid : `vsi:${p.managerid}/${p.typeid}/${p.typeidversion}`;
}

const sameInstance = (a: VfPortProfile, b: VfPortProfile): boolean => a.instanceUuid === b.instanceUuid;

/** ndo_set_vf_port: the request goes to the switch, whose first answer is kept on the port. A
 *  successful disassociation leaves no port behind (the tree is as before the association). */
export function setVfPort(
  ctx: Ctx,
  pfNetdev: string,
  vf: number,
  profile: VfPortProfile,
  request: PortRequest,
  answer: SwitchAnswer | undefined,
): void {
  const { pf, port, driverName, caps, row } = vfOf(ctx, pfNetdev, vf);
  const errno = caps.unsupported.portProfile;
  if (errno !== undefined)
    throw fail(errno, `cannot set a port profile on VF ${vf} of PF ${pfNetdev}: driver ${driverName ?? '?'} has none`);
  const { port: current, ...rest } = row;
  if (request === 'disassociate') {
    if (current !== undefined && !sameInstance(current.profile, profile)) {
      throw fail(
        'EINVAL',
        `VF ${vf} of PF ${pfNetdev} is associated for another instance (${current.profile.instanceUuid})`,
      );
    }
    setRow(ctx, pf, rest, port);
    return;
  }
  const a = answer ?? { answer: 'success' };
  const state: SimPort =
    a.answer === 'success'
      ? { profile, request, response: 'success' }
      : a.answer === 'failure'
        ? { profile, request, response: a.response ?? 'error' }
        : { profile, request, response: 'in-progress', polls: a.answer === 'timeout' ? -1 : (a.polls ?? 2) };
  setRow(ctx, pf, { ...rest, port: state }, port);
}

/** IFLA_VF_PORTS of one VF: an answer in progress turns into success after its polls (never,
 *  for a switch that times out). */
export function vfPortStatus(ctx: Ctx, pfNetdev: string, vf: number): VfPortState | undefined {
  const { pf, port, row } = vfOf(ctx, pfNetdev, vf);
  const p = row.port;
  if (p === undefined) return undefined;
  if (p.response === 'in-progress' && p.polls !== undefined && p.polls >= 0) {
    const next: SimPort =
      p.polls > 0 ? { ...p, polls: p.polls - 1 } : { profile: p.profile, request: p.request, response: 'success' };
    setRow(ctx, pf, { ...row, port: next }, port);
    return { profile: p.profile, request: p.request, response: p.polls > 0 ? 'in-progress' : 'success' };
  }
  return { profile: p.profile, request: p.request, ...(p.response === undefined ? {} : { response: p.response }) };
}
