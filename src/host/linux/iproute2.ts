import { execFile } from 'node:child_process';
import { PassthruError } from '../../conf/error.ts';
import { type MacAddress, parseMac, ZERO_MAC } from '../../conf/mac.ts';
import type { VfConfig, VfSettings } from '../types.ts';
import { splitSettings } from '../vf-caps.ts';
import { errnoFromText, type Rtnl, type VfDump, vfError } from './rtnl.ts';

/** Runs a program; resolves with stdout, or rejects with its stderr. Injected in tests. */
export type Run = (file: string, args: readonly string[]) => Promise<{ stdout: string; stderr: string }>;

export const runProcess: Run = (file, args) =>
  new Promise((resolve, reject) => {
    execFile(file, [...args], { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) {
        const failure: Error = Object.assign(err, { stderr });
        reject(failure);
      } else resolve({ stdout, stderr });
    });
  });

type Json = Record<string, unknown>;

/**
 * One `vfinfo_list` entry of `ip -j -d link show` (iproute2 print_vfinfo, peers-and-kernel.md
 * D6). Absent keys mean defaults: vlan/qos/tx_rate are printed only when non-zero, protocol
 * only when not 802.1Q, spoofchk/trust only when the driver reports them.
 */
export function parseVfInfo(e: Json): VfConfig {
  const list = Array.isArray(e['vlan_list']) ? (e['vlan_list'] as Json[]) : undefined;
  const first = list?.[0] ?? {};
  const vlan = Number(first['vlan'] ?? e['vlan'] ?? 0);
  const qos = Number(first['qos'] ?? e['qos'] ?? 0);
  const proto = first['protocol'] ?? e['protocol'];
  const rate = (e['rate'] ?? {}) as Json;
  const address = typeof e['address'] === 'string' ? e['address'] : undefined;
  let mac: MacAddress = ZERO_MAC;
  if (address !== undefined) {
    try {
      mac = parseMac(address);
    } catch {
      mac = ZERO_MAC; // InfiniBand VFs print 20-byte addresses: no Ethernet admin MAC
    }
  }
  const linkState = e['link_state'];
  return {
    vf: Number(e['vf']),
    mac,
    vlan,
    qos,
    ...(proto === '802.1ad' ? { vlanProto: '802.1ad' as const } : {}),
    ...(typeof e['spoofchk'] === 'boolean' ? { spoofchk: e['spoofchk'] } : {}),
    ...(typeof e['trust'] === 'boolean' ? { trust: e['trust'] } : {}),
    ...(linkState === 'auto' || linkState === 'enable' || linkState === 'disable' ? { linkState } : {}),
    minTxRate: Number(rate['min_tx'] ?? 0),
    maxTxRate: Number(rate['max_tx'] ?? e['tx_rate'] ?? 0),
  };
}

/** The JSON of `ip -j -d link show dev PF` to a dump; `num_vf` when a newer iproute2 prints it. */
export function parseLinkShow(stdout: string, stderr: string, pfNetdev: string): VfDump {
  let links: unknown;
  try {
    links = JSON.parse(stdout);
  } catch (err) {
    throw new PassthruError('HOST_FAILED', `cannot read the VF list of ${pfNetdev}: ip printed no JSON`, {
      cause: err,
    });
  }
  const link = Array.isArray(links) ? (links[0] as Json | undefined) : undefined;
  if (!link) throw new PassthruError('NO_DEVICE', `network device '${pfNetdev}' does not exist on this host`);
  const list = Array.isArray(link['vfinfo_list']) ? (link['vfinfo_list'] as Json[]) : [];
  const numVf = typeof link['num_vf'] === 'number' ? link['num_vf'] : undefined;
  return {
    numVf,
    vfs: list.map(parseVfInfo).sort((a, b) => a.vf - b.vf),
    truncated: stderr.includes('Truncated VF list'),
  };
}

/** `ip link set dev PF vf N ...` arguments for one setting. */
export function setArgs(pfNetdev: string, vf: number, s: VfSettings): string[] {
  const args = ['link', 'set', 'dev', pfNetdev, 'vf', String(vf)];
  if (s.mac !== undefined) args.push('mac', s.mac);
  if (s.vlan !== undefined) {
    args.push('vlan', String(s.vlan.id));
    if (s.vlan.qos !== undefined) args.push('qos', String(s.vlan.qos));
    if (s.vlan.proto !== undefined) args.push('proto', s.vlan.proto);
  }
  if (s.rate !== undefined) args.push('min_tx_rate', String(s.rate.minTx), 'max_tx_rate', String(s.rate.maxTx));
  if (s.spoofchk !== undefined) args.push('spoofchk', s.spoofchk ? 'on' : 'off');
  if (s.linkState !== undefined) args.push('state', s.linkState);
  if (s.trust !== undefined) args.push('trust', s.trust ? 'on' : 'off');
  return args;
}

function stderrOf(err: unknown): string {
  const e = err as { stderr?: unknown; message?: unknown };
  return typeof e.stderr === 'string' && e.stderr !== '' ? e.stderr : String(e.message ?? err);
}

export function ipRoute2(run: Run = runProcess, ip = 'ip'): Rtnl {
  return {
    name: 'iproute2',
    async readVfs(pfNetdev) {
      try {
        const { stdout, stderr } = await run(ip, ['-j', '-d', 'link', 'show', 'dev', pfNetdev]);
        return parseLinkShow(stdout, stderr, pfNetdev);
      } catch (err) {
        if (err instanceof PassthruError) throw err;
        const text = stderrOf(err);
        if (text.includes('does not exist') || text.includes('Cannot find device')) {
          throw new PassthruError('NO_DEVICE', `network device '${pfNetdev}' does not exist on this host`);
        }
        const errno = errnoFromText(text);
        throw new PassthruError('HOST_FAILED', `cannot read the VF list of ${pfNetdev}: ${text.trim()}`, {
          ...(errno === undefined ? {} : { errno }),
        });
      }
    },
    async setVf(pfNetdev, vf, settings) {
      for (const { what, one } of splitSettings(settings)) {
        try {
          await run(ip, setArgs(pfNetdev, vf, one));
        } catch (err) {
          const text = stderrOf(err).trim();
          throw vfError(pfNetdev, vf, what, errnoFromText(text), text);
        }
      }
    },
  };
}
