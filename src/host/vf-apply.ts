import { basename } from 'node:path';
import { PassthruError } from '../conf/error.ts';
import { ZERO_MAC } from '../conf/mac.ts';
import type { Kernel, Sysfs, VfConfig, VfSettings } from './types.ts';
import { ALMOST_ZERO_MAC, refuseUnsupported, splitSettings, type VfCapabilities, vfCapabilities } from './vf-caps.ts';

/**
 * Writing a VF's attributes through its PF the way that survives real drivers: refuse what the
 * driver cannot do before anything changes, refuse a PF that is down where the driver needs it
 * up, send one attribute per request with the quirks handled (an all-zero MAC the driver
 * refuses becomes 02:00:00:00:00:00, "VF still in reset" EAGAIN is retried, EPERM on clearing
 * VLAN 0 is ignored), then read the row back, polling where the driver programs the MAC late.
 * Kernel.setVf stays the plain rtnetlink write underneath, for linux and sim alike.
 */
export interface ApplyOptions {
  readonly sleep?: (ms: number) => Promise<void>;
  /** How long verification waits for a driver that programs an admin MAC late. */
  readonly macTimeoutMs?: number;
  /** How long "VF still in reset" (EAGAIN) is retried. */
  readonly resetTimeoutMs?: number;
}

const realSleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function pfDriverOf(sysfs: Sysfs, pfNetdev: string): Promise<string | undefined> {
  const link = await sysfs.readLink(`/sys/class/net/${pfNetdev}/device/driver`);
  return link === undefined ? undefined : basename(link);
}

/** IFF_UP of the PF netdev (libvirt's virNetDevIsOnline), from `flags` where sysfs has it,
 *  else from `operstate`. Undefined when the netdev does not exist. */
export async function pfIsUp(sysfs: Sysfs, pfNetdev: string): Promise<boolean | undefined> {
  const flags = await sysfs.read(`/sys/class/net/${pfNetdev}/flags`);
  if (flags !== undefined) return (Number.parseInt(flags, 16) & 1) === 1;
  const state = await sysfs.read(`/sys/class/net/${pfNetdev}/operstate`);
  return state === undefined ? undefined : state !== 'down';
}

/** libvirt's words (virNetDevSaveNetConfig), since the operator's fix is the same. */
export function pfDownError(pfNetdev: string, vf: number): PassthruError {
  return new PassthruError(
    'HOST_FAILED',
    `Unable to configure VF ${vf} of PF '${pfNetdev}' because the PF is not online. Please change host network config to put the PF online.`,
    {
      errno: 'ENETDOWN',
      hint: `ip link set ${pfNetdev} up (passthru does not do it: bringing a PF up starts IPv6 autoconfiguration on it)`,
    },
  );
}

/** The checks that must pass before anything is written: the driver can do every setting, and
 *  the PF is up where the driver needs it. Planner-callable. */
export async function checkVfSettings(
  kernel: Kernel,
  pfNetdev: string,
  vf: number,
  s: VfSettings,
  portProfile?: string,
): Promise<VfCapabilities> {
  const caps = vfCapabilities(await pfDriverOf(kernel.sysfs, pfNetdev));
  refuseUnsupported(caps, s, `VF ${vf} of PF ${pfNetdev}`, portProfile);
  if (caps.pfMustBeUp && Object.keys(s).length > 0 && (await pfIsUp(kernel.sysfs, pfNetdev)) === false) {
    throw pfDownError(pfNetdev, vf);
  }
  return caps;
}

const errnoOf = (err: unknown): string | undefined => (err instanceof PassthruError ? err.errno : undefined);

/** Writes the settings and verifies them; answers what was written in the end (the MAC may be
 *  02:00:00:00:00:00 where 00:00:00:00:00:00 was asked and refused). */
export async function applyVfSettings(
  kernel: Kernel,
  pfNetdev: string,
  vf: number,
  s: VfSettings,
  opts: ApplyOptions = {},
): Promise<VfSettings> {
  const sleep = opts.sleep ?? realSleep;
  const caps = await checkVfSettings(kernel, pfNetdev, vf, s);
  let written: VfSettings = {};
  for (const { one } of splitSettings(s)) {
    let req = one;
    for (let waited = 0; ; ) {
      try {
        await kernel.setVf(pfNetdev, vf, req);
        written = { ...written, ...req };
        break;
      } catch (err) {
        const errno = errnoOf(err);
        if (errno === 'EINVAL' && req.mac === ZERO_MAC) {
          req = { mac: ALMOST_ZERO_MAC }; // libvirt's altZeroMAC retry
          continue;
        }
        // Clearing a VLAN: bnxt/enic answer EPERM when no embedded switch is exposed; libvirt
        // ignores it. The read-back still checks that the row shows no VLAN.
        if (errno === 'EPERM' && req.vlan?.id === 0 && !req.vlan.qos) {
          written = { ...written, vlan: { id: 0 } };
          break;
        }
        // i40e/ice answer "VF n still in reset. Try again." while the VF comes back.
        if (errno === 'EAGAIN' && waited < (opts.resetTimeoutMs ?? 3000)) {
          await sleep(100);
          waited += 100;
          continue;
        }
        throw err;
      }
    }
  }
  await verify(kernel, pfNetdev, vf, written, caps.macAsync ? (opts.macTimeoutMs ?? 2000) : 0, sleep);
  return written;
}

/** Reads the row back; a driver that programs the MAC late gets polled until the deadline. */
async function verify(
  kernel: Kernel,
  pfNetdev: string,
  vf: number,
  s: VfSettings,
  macDeadlineMs: number,
  sleep: (ms: number) => Promise<void>,
): Promise<void> {
  const deadline = s.mac !== undefined ? macDeadlineMs : 0;
  for (let waited = 0; ; waited += 100) {
    const row = (await kernel.vfTable(pfNetdev)).find((r) => r.vf === vf);
    const wrong = mismatch(row, s);
    if (wrong === undefined) return;
    if (waited >= deadline) {
      throw new PassthruError('HOST_FAILED', `VF ${vf} of PF ${pfNetdev} did not take the setting: ${wrong}`, {
        hint: 'the PF driver accepted the request but reads back another value',
      });
    }
    await sleep(100);
  }
}

/** Which set field does not read back as written; undefined when all do. Fields a driver does
 *  not report (spoofchk/trust of -1) cannot be checked and are not held against it. */
export function mismatch(row: VfConfig | undefined, s: VfSettings): string | undefined {
  if (!row) return 'the VF is missing from the table';
  if (s.mac !== undefined && row.mac !== s.mac) return `admin MAC reads ${row.mac}, not ${s.mac}`;
  if (s.vlan !== undefined) {
    if (row.vlan !== s.vlan.id) return `VLAN reads ${row.vlan}, not ${s.vlan.id}`;
    if (s.vlan.qos !== undefined && row.qos !== s.vlan.qos) return `qos reads ${row.qos}, not ${s.vlan.qos}`;
    const proto = row.vlanProto ?? '802.1Q';
    if (s.vlan.proto !== undefined && s.vlan.id !== 0 && proto !== s.vlan.proto)
      return `VLAN protocol reads ${proto}, not ${s.vlan.proto}`;
  }
  if (s.spoofchk !== undefined && row.spoofchk !== undefined && row.spoofchk !== s.spoofchk) {
    return `spoofchk reads ${row.spoofchk ? 'on' : 'off'}`;
  }
  if (s.trust !== undefined && row.trust !== undefined && row.trust !== s.trust)
    return `trust reads ${row.trust ? 'on' : 'off'}`;
  if (s.linkState !== undefined && row.linkState !== undefined && row.linkState !== s.linkState) {
    return `link state reads ${row.linkState}`;
  }
  if (s.rate !== undefined && (row.maxTxRate !== s.rate.maxTx || row.minTxRate !== s.rate.minTx)) {
    return `tx rate reads ${row.minTxRate ?? 0}..${row.maxTxRate ?? 0}`;
  }
  return undefined;
}

/** The whole row as settings: what a save step keeps so that restore puts back every attribute
 *  the driver reports (and only those: a field the driver does not report is left alone). */
export function rowSettings(row: VfConfig): VfSettings {
  return {
    mac: row.mac,
    vlan: { id: row.vlan, qos: row.qos, proto: row.vlanProto ?? '802.1Q' },
    ...(row.minTxRate !== undefined || row.maxTxRate !== undefined
      ? { rate: { minTx: row.minTxRate ?? 0, maxTx: row.maxTxRate ?? 0 } }
      : {}),
    ...(row.spoofchk === undefined ? {} : { spoofchk: row.spoofchk }),
    ...(row.linkState === undefined ? {} : { linkState: row.linkState }),
    ...(row.trust === undefined ? {} : { trust: row.trust }),
  };
}

/** What must be written to bring a VF from its row `now` back to the saved row: only the
 *  attributes that differ, so that a restore never writes an attribute the driver reports but
 *  cannot set (igb reports link state 'auto' and refuses to set it). */
export function settingsToRestore(saved: VfConfig, now: VfConfig): VfSettings {
  const all = rowSettings(saved);
  const differs = (one: VfSettings): VfSettings => (mismatch(now, one) === undefined ? {} : one);
  return {
    ...(all.mac === undefined ? {} : differs({ mac: all.mac })),
    ...(all.vlan === undefined ? {} : differs({ vlan: all.vlan })),
    ...(all.rate === undefined ? {} : differs({ rate: all.rate })),
    ...(all.spoofchk === undefined ? {} : differs({ spoofchk: all.spoofchk })),
    ...(all.linkState === undefined ? {} : differs({ linkState: all.linkState })),
    ...(all.trust === undefined ? {} : differs({ trust: all.trust })),
  };
}
