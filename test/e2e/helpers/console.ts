import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** The line the test guest's /init prints for each NIC, about once a second. */
export const GUEST_NIC_LINE =
  /^passthru-guest: nic (?<nic>\S+) mac (?<mac>[0-9a-f:]{17}) driver (?<driver>\S+) pci (?<pci>\S+) master (?<master>\S+)$/;

export interface GuestNic {
  readonly nic: string;
  readonly mac: string;
  readonly driver: string;
  readonly pci: string;
  readonly master: string;
}

export function parseGuestNics(consoleText: string): GuestNic[] {
  const out: GuestNic[] = [];
  for (const line of consoleText.split(/\r?\n/)) {
    const g = GUEST_NIC_LINE.exec(line.trim())?.groups;
    if (g?.['nic'] && g['mac'] && g['driver'] && g['pci'] && g['master']) {
      out.push({ nic: g['nic'], mac: g['mac'], driver: g['driver'], pci: g['pci'], master: g['master'] });
    }
  }
  return out;
}

/**
 * Polls a console log until a guest NIC line satisfies `match`, or fails after timeoutMs (a bound
 * on the wait, not an assertion about speed). `stop` ends the wait early (e.g. QEMU exited).
 */
export async function waitForGuestNic(
  consoleLog: string,
  match: (nic: GuestNic) => boolean,
  timeoutMs: number,
  stop: () => string | undefined = () => undefined,
): Promise<GuestNic> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const text = await readFile(consoleLog, 'utf8').catch(() => '');
    const hit = parseGuestNics(text).find(match);
    if (hit) return hit;
    const why = stop();
    if (why !== undefined) throw new Error(`${why}; console so far:\n${text.slice(-2000)}`);
    if (performance.now() > deadline) {
      throw new Error(
        `no matching NIC line in ${consoleLog} within ${timeoutMs} ms; console so far:\n${text.slice(-2000)}`,
      );
    }
    await sleep(100);
  }
}

/** A short temporary directory (unix socket paths must stay under 108 bytes). */
export async function withRunDir<T>(prefix: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), `${prefix}-`));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The NICs of the guest's last complete scan (the lines between its last two scan markers);
 *  undefined before two scans were printed. */
export function lastScanNics(consoleText: string): GuestNic[] | undefined {
  const scans = consoleText.split('passthru-guest: scan ');
  const last = scans.length >= 3 ? scans[scans.length - 2] : undefined;
  return last === undefined ? undefined : parseGuestNics(last);
}

/** Polls the console until the last complete scan satisfies `want`; fails after `seconds`. */
export async function waitForScan(
  consoleLog: string,
  want: (nics: GuestNic[]) => boolean,
  seconds = 150,
): Promise<GuestNic[]> {
  for (let i = 0; i < seconds * 4; i++) {
    const nics = lastScanNics(await readFile(consoleLog, 'utf8').catch(() => ''));
    if (nics && want(nics)) return nics;
    await sleep(250);
  }
  const tail = (await readFile(consoleLog, 'utf8').catch(() => '(no console)')).slice(-1500);
  throw new Error(`the guest's console never showed the expected NICs:\n${tail}`);
}
