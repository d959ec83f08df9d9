import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { waitForScan } from './console.ts';
import type { E2eGuest } from './guest.ts';

/** The domain XML of a q35 test guest booting the test kernel, with `devices` (XML lines) and
 *  its serial console in the file `console`. `extra` goes after `<vcpu>` (cpu, cputune ...). */
export function guestXml(g: E2eGuest, name: string, devices: string, console: string, extra = ''): string {
  return `<domain type='kvm'>
  <name>${name}</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>${extra}
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>${g.kernel}</kernel>
    <initrd>${g.initrd}</initrd>
    <cmdline>${g.append}</cmdline>
  </os>
  <devices>
${devices}
    <serial type='file'>
      <source path='${console}'/>
      <target port='0'/>
    </serial>
  </devices>
</domain>
`;
}

/** The first line of the file matching `re`, waiting for the guest to print it. */
export async function waitForLine(path: string, re: RegExp, seconds = 120): Promise<string> {
  for (let i = 0; i < seconds * 4; i++) {
    const line = (await readFile(path, 'utf8').catch(() => '')).split(/\r?\n/).find((l) => re.test(l));
    if (line) return line.trim();
    await sleep(250);
  }
  throw new Error(`no line ${re} in ${path}: ${(await readFile(path, 'utf8').catch(() => '(none)')).slice(-2000)}`);
}

/** Defines and starts a test guest with no devices, and waits for its first NIC scans (none);
 *  returns its console file. */
export async function startBareGuest(
  client: { post(path: string, body?: unknown): Promise<unknown> },
  g: E2eGuest,
  name: string,
  dir: string,
): Promise<string> {
  const console = join(dir, `${name}.console`);
  await client.post('/domains', { xml: guestXml(g, name, '', console) });
  await client.post(`/domains/${name}/start`);
  await waitForScan(console, (nics) => nics.length === 0);
  return console;
}
