import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { readNetlink } from '../../../src/host/sim/state.ts';
import { readSwitch } from '../../../src/host/sim/switch.ts';
import { type GuestNic, GUEST_NIC_LINE } from './console.ts';
import type { DomainSummary } from '../../../src/protocol/wire.ts';
import type { TestDaemon } from '../../helpers/daemon.ts';
import type { E2eGuest } from './guest.ts';

/** A 256 MiB guest with a virtio NIC and, with `vf`, a VF of the sim X710's first PF as the
 *  failover primary of that NIC (one MAC): what migration moves. No <serial>: the console goes
 *  to each daemon's run directory, so the two hosts' consoles stay apart. */
export function migratingGuestXml(
  name: string,
  g: E2eGuest,
  o: {
    mac: string;
    vf?: number;
    memoryMiB?: number;
    portProfile?: string;
    network?: string;
    /** false: the VF has no virtio standby (migrate --unplug-hostdevs moves it). */
    failover?: boolean;
  },
): string {
  const virtualport =
    o.portProfile === undefined
      ? ''
      : `
      <virtualport type='802.1Qbh'><parameters profileid='${o.portProfile}'/></virtualport>`;
  const primary =
    o.network !== undefined
      ? `
    <interface type='network'>
      <mac address='${o.mac}'/>
      <source network='${o.network}'/>${o.failover === false ? '' : "\n      <teaming type='transient' persistent='ua-backup0'/>"}${virtualport}
    </interface>`
      : o.vf === undefined
        ? ''
        : `
    <interface type='hostdev' managed='yes'>
      <mac address='${o.mac}'/>
      <source><address type='pci' domain='0x0000' bus='0x06' slot='0x02' function='0x${o.vf}'/></source>
      <teaming type='transient' persistent='ua-backup0'/>${virtualport}
    </interface>`;
  const standby =
    (o.vf === undefined && o.network === undefined) || o.failover === false ? '' : "<teaming type='persistent'/>";
  return guestDomainXml(
    name,
    g,
    `<interface type='user'>
      <mac address='${o.mac}'/>
      <model type='virtio'/>
      ${standby}
      <alias name='ua-backup0'/>
    </interface>${primary}`,
    o.memoryMiB,
  );
}

/** A q35 test guest of `memoryMiB` (256) with `devices`. No <serial>: the console goes to each
 *  daemon's run directory, so the two hosts' consoles stay apart. */
export function guestDomainXml(name: string, g: E2eGuest, devices: string, memoryMiB = 256): string {
  return `<domain type='kvm'>
  <name>${name}</name>
  <memory unit='MiB'>${memoryMiB}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>${g.kernel}</kernel>
    <initrd>${g.initrd}</initrd>
    <cmdline>${g.append}</cmdline>
  </os>
  <devices>
    <emulator>${g.qemu}</emulator>
    ${devices}
  </devices>
</domain>`;
}

export const consoleOf = (stateDir: string, name: string): string => join(stateDir, 'run', name, 'console.log');

/** The guest's NIC report, round by round (each ends with its `scan N` line). */
export function nicRounds(text: string): GuestNic[][] {
  const rounds: GuestNic[][] = [];
  let cur: GuestNic[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    const g = GUEST_NIC_LINE.exec(line)?.groups;
    if (g?.['nic'] && g['mac'] && g['driver'] && g['pci'] && g['master']) {
      cur.push({ nic: g['nic'], mac: g['mac'], driver: g['driver'], pci: g['pci'], master: g['master'] });
    } else if (/^passthru-guest: scan \d+/.test(line)) {
      rounds.push(cur);
      cur = [];
    }
  }
  return rounds;
}

/** Waits (bounded) until a round of the console satisfies `ok`. */
export async function waitRound(
  file: string,
  ok: (round: GuestNic[], index: number, all: GuestNic[][]) => boolean,
  timeoutMs: number,
  what: string,
): Promise<GuestNic[][]> {
  const text = await waitConsole(
    file,
    (t) => {
      const rounds = nicRounds(t);
      return rounds.some((r, i) => ok(r, i, rounds));
    },
    timeoutMs,
    what,
  );
  return nicRounds(text);
}

/** Waits (bounded) until the console's text satisfies `ok`; answers that text. */
export async function waitConsole(
  file: string,
  ok: (text: string) => boolean,
  timeoutMs: number,
  what: string,
): Promise<string> {
  const end = performance.now() + timeoutMs;
  for (;;) {
    const text = await readFile(file, 'utf8').catch(() => '');
    if (ok(text)) return text;
    if (performance.now() > end) {
      throw new Error(`${what}: not seen on ${file} within ${timeoutMs} ms; console so far:\n${text.slice(-2500)}`);
    }
    await sleep(200);
  }
}

/** Where `text` (a console) shows the guest's kernel reporting `nic` added or removed (the
 *  test guest prints each NIC uevent as it comes); -1 when it does not. Unlike the once-a-second
 *  rounds, this cannot miss a NIC that was away for less than a round. */
export function nicUevent(text: string, action: 'add' | 'remove', nic: string): number {
  const m = new RegExp(`^passthru-guest: uevent ${action} net ${nic}\\r?$`, 'm').exec(text);
  return m ? m.index : -1;
}

/** Waits (bounded) until one of the consoles shows `nic` removed. A guest that migrates may print
 *  it on either host's console: the line can be written after the switch-over. */
export async function waitNicRemoved(files: readonly string[], nic: string, timeoutMs: number): Promise<void> {
  const end = performance.now() + timeoutMs;
  for (;;) {
    const texts = await Promise.all(files.map((f) => readFile(f, 'utf8').catch(() => '')));
    if (texts.some((t) => nicUevent(t, 'remove', nic) >= 0)) return;
    if (performance.now() > end) {
      throw new Error(`no uevent of ${nic} removed on ${files.join(' or ')} within ${timeoutMs} ms`);
    }
    await sleep(200);
  }
}

/** The guest's name of the NIC with this driver and MAC in the rounds, if any round has it. */
export function nicName(rounds: readonly GuestNic[][], driver: string, mac: string): string {
  const nic = rounds.flat().find((n) => n.driver === driver && n.mac === mac)?.nic;
  if (nic === undefined) throw new Error(`no ${driver} NIC with MAC ${mac} in the guest's rounds`);
  return nic;
}

export const enslavedVf = (mac: string) => (r: GuestNic[]) =>
  r.some((n) => n.driver === 'e1000e' && n.mac === mac && n.master !== '-');

/** Every change of a VF's port-profile request on a sim host (read from its VF table file), from
 *  now until stopped: what the switch behind the PF was asked, in order. */
export function watchPortRequests(hostDir: string, pfBdf: string, vf: number): { stop(): (string | undefined)[] } {
  const seen: (string | undefined)[] = [];
  let on = true;
  void (async () => {
    while (on) {
      const row = readNetlink(hostDir, pfBdf).vfs.find((r) => r.vf === vf);
      const now = row?.port?.request;
      if (seen.length === 0 || seen.at(-1) !== now) seen.push(now);
      await sleep(20);
    }
  })();
  return {
    stop: () => {
      on = false;
      return seen;
    },
  };
}

/**
 * The sim switches' record of a failover migration, A to B: A moves the guest MAC off its VF at
 * UNPLUG_PRIMARY (to the standby path), then off the host; B holds it on the standby path until
 * QEMU plugs B's VF `vfB`, and only after A let go.
 */
export function assertMacFollowed(hostA: string, hostB: string, mac: string, vfB: number): void {
  const swA = readSwitch(hostA).moves.filter((m) => m.mac === mac);
  const swB = readSwitch(hostB).moves.filter((m) => m.mac === mac);
  assert.deepEqual(
    swA.map((m) => m.to),
    ['standby', 'none'],
  );
  assert.match(swA[0]?.reason ?? '', /UNPLUG_PRIMARY/);
  assert.deepEqual(
    swB.map((m) => m.to),
    ['standby', `vf${vfB}`],
  );
  assert.ok((swA[0]?.at ?? 0) <= (swB[1]?.at ?? 0), 'A moved off its VF before B put the MAC on its VF');
}

/** The end of a two-host test file: every guest still running destroyed, both daemons stopped,
 *  their directories removed. */
export async function stopHosts(daemons: readonly TestDaemon[], dir: string): Promise<void> {
  for (const d of daemons) {
    const doms = await d.client.get<DomainSummary[]>('/domains').catch(() => []);
    for (const x of doms)
      if (x.state !== 'shutoff') await d.client.post(`/domains/${x.name}/destroy`).catch(() => undefined);
    await d.stop();
  }
  await rm(dir, { recursive: true, force: true });
}

/** A domain as one host lists it, undefined when that host has none of the name. */
export async function summaryOn(d: TestDaemon, name: string): Promise<DomainSummary | undefined> {
  return (await d.client.get<DomainSummary[]>('/domains')).find((x) => x.name === name);
}
