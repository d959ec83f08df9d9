import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PassthruError } from '../../conf/error.ts';
import { createSimHost } from '../../host/sim/create.ts';
import type { NodeDeviceSummary, VfTable, XmlBody } from '../../protocol/wire.ts';
import { Client } from '../../protocol/client.ts';
import { findGuest, findQemu, spawnDaemon } from '../local.ts';
import type { Invocation } from '../spec.ts';
import { renderVfTable } from './nodedev.ts';

const MAC = '52:54:00:00:00:01';
const VLAN = 42;

export function quickstartXml(vf: string, guest: { kernel: string; initrd: string }, serialLog: string): string {
  const [domain, bus, slotFn] = vf.split(':');
  const [slot, fn] = (slotFn ?? '').split('.');
  return `<domain type='kvm'>
  <name>quickstart</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>${guest.kernel}</kernel>
    <initrd>${guest.initrd}</initrd>
    <cmdline>console=ttyS0 quiet panic=-1</cmdline>
  </os>
  <devices>
    <interface type='hostdev' managed='yes'>
      <mac address='${MAC}'/>
      <source>
        <address type='pci' domain='0x${domain}' bus='0x${bus}' slot='0x${slot}' function='0x${fn}'/>
      </source>
      <vlan>
        <tag id='${VLAN}'/>
      </vlan>
    </interface>
    <serial type='file'>
      <source path='${serialLog}'/>
      <target port='0'/>
    </serial>
  </devices>
</domain>
`;
}

/** Waits for a line of the guest's console naming the MAC (bounded). */
async function waitForConsole(path: string, mac: string, seconds: number): Promise<string> {
  for (let i = 0; i < seconds * 4; i++) {
    const text = await readFile(path, 'utf8').catch(() => '');
    const line = text.split('\n').find((l) => l.includes(`mac ${mac}`));
    if (line) return line.trim();
    await sleep(250);
  }
  throw new PassthruError('TIMEOUT', `the guest's console did not show MAC ${mac} within ${seconds} s (see ${path})`);
}

async function waitForDaemon(path: string, daemon: ChildProcess, log: string): Promise<void> {
  for (let i = 0; i < 120; i++) {
    if (daemon.exitCode !== null) {
      const tail = (await readFile(log, 'utf8').catch(() => '')).split('\n').slice(-8).join('\n');
      throw new PassthruError(
        'INTERNAL',
        `passthrud exited (${daemon.exitCode}) before it served; its log ends:\n${tail}`,
      );
    }
    // The socket file appears at bind(), before listen(): ready means the API answers.
    if (
      await new Client(path).get('/domains').then(
        () => true,
        () => false,
      )
    )
      return;
    await sleep(250);
  }
  throw new PassthruError('TIMEOUT', `passthrud did not answer on its socket ${path} within 30 s`);
}

export async function quickstart({ ctx, opts }: Invocation): Promise<void> {
  const say = (s: string): void => ctx.out(`${s}\n`);
  const dir = await mkdtemp(join(tmpdir(), 'passthru-quickstart-'));
  const simDir = join(dir, 'host');
  const socket = join(dir, 'passthru.sock');
  say(`== 1. a simulated host: two Intel X710 PFs with 8 VFs each (${simDir})`);
  await createSimHost(simDir, 'intel-x710-2port');
  say('== 2. passthrud on it');
  const daemonLog = join(dir, 'passthrud.log');
  const daemon = spawnDaemon(
    // --config '': this machine's /etc/passthru/passthrud.conf is for its real daemon, not the demo's.
    ['--host', `sim:${simDir}`, '--state-dir', join(dir, 'state'), '--socket', socket, '--config', ''],
    daemonLog,
  );
  const client = new Client(socket);
  try {
    await waitForDaemon(socket, daemon, daemonLog);
    const pci = await client.get<NodeDeviceSummary[]>('/nodedevs?cap=pci');
    const pf = pci.find((d) => d.detail === 'i40e');
    if (!pf) throw new PassthruError('NO_DEVICE', 'the simulated host shows no i40e PF');
    const before = await client.get<VfTable>(`/nodedevs/${pf.name}/vfs`);
    const vf = before.vfs[0];
    if (!vf) throw new PassthruError('NO_DEVICE', `PF ${before.pf} has no VFs`);
    say(
      `   VF 0 of PF ${before.pfNetdev} is ${vf.address} (driver ${vf.driver ?? '-'}, admin MAC ${vf.mac}, VLAN ${vf.vlan})`,
    );

    const guest = findGuest();
    const serial = join(dir, 'console.log');
    say(`== 3. define a domain with <interface type='hostdev'> on ${vf.address}, MAC ${MAC}, VLAN ${VLAN}`);
    const guestPaths =
      typeof guest === 'string'
        ? { kernel: '/nonexistent/vmlinux', initrd: '/nonexistent/initrd' }
        : { kernel: guest.vmlinux, initrd: guest.initrd };
    await client.post('/domains', { xml: quickstartXml(vf.address, guestPaths, serial) });
    const qemu = findQemu();
    if (typeof qemu === 'string' || typeof guest === 'string') {
      say('== 4. cannot start the guest here:');
      if (typeof qemu === 'string') say(`   - ${qemu}`);
      if (typeof guest === 'string') say(`   - ${guest}`);
      say('   Everything before the launch worked; install what is missing and run quickstart again.');
      return;
    }
    say('== 4. start it: the VF is bound to vfio-pci, its admin MAC and VLAN are set through the PF, QEMU starts');
    const t0 = Date.now();
    await client.post('/domains/quickstart/start');
    const line = await waitForConsole(serial, MAC, 120);
    say(`   the guest's console, ${((Date.now() - t0) / 1000).toFixed(1)} s after start:\n   ${line}`);
    say('== 5. the live XML (note the guest PCI address and alias):');
    ctx.out((await client.get<XmlBody>('/domains/quickstart/xml')).xml);
    say('== 6. the VF table on the host while the guest runs:');
    ctx.out(renderVfTable(await client.get<VfTable>(`/nodedevs/${pf.name}/vfs`)));
    say('== 7. destroy: the VF goes back to its host driver with its admin MAC and VLAN restored');
    await client.post('/domains/quickstart/destroy');
    ctx.out(renderVfTable(await client.get<VfTable>(`/nodedevs/${pf.name}/vfs`)));
  } finally {
    if (daemon.exitCode === null) {
      daemon.kill('SIGTERM');
      await new Promise((r) => daemon.once('exit', r));
    }
    if (opts['keep']) say(`(kept ${dir})`);
    else await rm(dir, { recursive: true, force: true });
  }
}
