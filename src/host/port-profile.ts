import { PassthruError } from '../conf/error.ts';
import type { Kernel, PortRequest, PortResponse, VfPortProfile, VfPortState } from './types.ts';
import { pfDriverOf } from './vf-apply.ts';
import { refuseUnsupported, vfCapabilities } from './vf-caps.ts';

/**
 * 802.1Qbh / 802.1Qbg port profiles of a VF, through its PF (IFLA_VF_PORTS), in libvirt's
 * steps (virnetdevvportprofile.c): send the request, then read IFLA_PORT_RESPONSE until the
 * switch stops saying "in progress", within a deadline. A failed or unanswered association is
 * taken back, so the VF's port is as it was, and the error says what the switch answered.
 */
export interface PortOptions {
  /** libvirt polls for 10 s (STATUS_POLL_TIMEOUT_USEC) every 256 ms. */
  readonly timeoutMs?: number;
  readonly intervalMs?: number;
  readonly sleep?: (ms: number) => Promise<void>;
}

const realSleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function describeProfile(p: VfPortProfile): string {
  return p.type === '802.1Qbh'
    ? `802.1Qbh port profile '${p.profileid}'`
    : `802.1Qbg VSI type ${p.typeid} version ${p.typeidversion} (manager ${p.managerid})`;
}

/** What an incoming migration asks instead of associating: the switch gets ready for the VM
 *  without moving traffic yet (libvirt: PREASSOCIATE_RR for 802.1Qbh, PREASSOCIATE for Qbg). */
export function associateRequest(p: VfPortProfile, incoming: boolean): PortRequest {
  if (!incoming) return 'associate';
  return p.type === '802.1Qbh' ? 'preassociate-rr' : 'preassociate';
}

/** Refuses, before anything changes, a PF whose driver has no VF ports (igb). */
export async function checkPortProfile(kernel: Kernel, pfNetdev: string, vf: number, p: VfPortProfile): Promise<void> {
  const caps = vfCapabilities(await pfDriverOf(kernel.sysfs, pfNetdev));
  refuseUnsupported(caps, {}, `VF ${vf} of PF ${pfNetdev}`, describeProfile(p));
}

async function awaitAnswer(
  kernel: Kernel,
  pfNetdev: string,
  vf: number,
  opts: PortOptions,
): Promise<PortResponse | 'timeout' | 'none'> {
  const sleep = opts.sleep ?? realSleep;
  const timeout = opts.timeoutMs ?? 10_000;
  const interval = opts.intervalMs ?? 256;
  for (let waited = 0; ; waited += interval) {
    const s = await kernel.vfPortStatus(pfNetdev, vf);
    if (s === undefined) return 'none';
    if (s.response !== 'in-progress' && s.response !== undefined) return s.response;
    if (waited >= timeout) return 'timeout';
    await sleep(interval);
  }
}

/** Associates (or pre-associates, `incoming`) the VF's port with the profile. Answers the
 *  port's state before, which release's disassociation does not need but a journal may keep. */
export async function associatePort(
  kernel: Kernel,
  pfNetdev: string,
  vf: number,
  profile: VfPortProfile,
  incoming = false,
  opts: PortOptions = {},
): Promise<VfPortState | undefined> {
  await checkPortProfile(kernel, pfNetdev, vf, profile);
  const before = await kernel.vfPortStatus(pfNetdev, vf);
  const request = associateRequest(profile, incoming);
  await kernel.setVfPort(pfNetdev, vf, profile, request);
  const answer = await awaitAnswer(kernel, pfNetdev, vf, opts);
  if (answer === 'success') return before;
  // Take it back, so that the port is as it was; the switch's answer is what the user needs.
  try {
    await kernel.setVfPort(pfNetdev, vf, profile, 'disassociate');
    if (before !== undefined) await kernel.setVfPort(pfNetdev, vf, before.profile, before.request);
  } catch {
    // The original answer is the error to report; a failed take-back shows in the VF's port.
  }
  const what = `${request === 'associate' ? 'associate' : `${request} (incoming migration)`} VF ${vf} of PF ${pfNetdev} with ${describeProfile(profile)}`;
  if (answer === 'timeout') {
    throw new PassthruError(
      'TIMEOUT',
      `cannot ${what}: the switch was still answering 'in-progress' after ${(opts.timeoutMs ?? 10_000) / 1000} s`,
      { hint: 'the request was withdrawn; check the switch port configuration' },
    );
  }
  throw new PassthruError(
    'HOST_FAILED',
    answer === 'none'
      ? `cannot ${what}: the PF reports no port for the VF after the request (no IFLA_PORT_RESPONSE)`
      : `cannot ${what}: the switch answered '${answer}'`,
    { hint: 'the VF was left as it was' },
  );
}

/** Disassociates the VF's port (release). A port already gone is fine. */
export async function disassociatePort(
  kernel: Kernel,
  pfNetdev: string,
  vf: number,
  profile: VfPortProfile,
): Promise<void> {
  const now = await kernel.vfPortStatus(pfNetdev, vf);
  if (now === undefined) return;
  await kernel.setVfPort(pfNetdev, vf, profile, 'disassociate');
}
