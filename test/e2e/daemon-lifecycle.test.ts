import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createSimHost } from '../../src/host/sim/create.ts';
import type { DomainInfo, ShutdownResult } from '../../src/protocol/wire.ts';
import { startDaemon, type TestDaemon } from '../helpers/daemon.ts';
import { REPO_ROOT } from './helpers/env.ts';
import { type E2eGuest, e2eGuest } from './helpers/guest.ts';

/**
 * The graceful lifecycle with the real guest: its /init powers off on the ACPI power button
 * (busybox acpid), unless booted with passthru.noacpi, which makes a guest that ignores it.
 */
const env = e2eGuest();
let dir = '';
let daemon: TestDaemon | undefined;

before(async () => {
  if (typeof env === 'string') return;
  dir = await mkdtemp(join(tmpdir(), 'pt-life-'));
  await createSimHost(join(dir, 'host'), 'intel-x710-2port');
  daemon = await startDaemon(dir);
});

after(async () => {
  for (const n of ['life1', 'life2']) await daemon?.client.post(`/domains/${n}/destroy`).catch(() => undefined);
  await daemon?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function domainXml(g: E2eGuest, name: string, extraCmdline = ''): string {
  return `<domain type='kvm'>
  <name>${name}</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>${g.kernel}</kernel>
    <initrd>${g.initrd}</initrd>
    <cmdline>${g.append}${extraCmdline}</cmdline>
  </os>
  <devices>
    <serial type='pty'/>
  </devices>
</domain>
`;
}

const consoleOf = (name: string): Promise<string> =>
  readFile(join(dir, 'state', 'run', name, 'console.log'), 'utf8').catch(() => '');

/** Waits until the guest has printed its ready line `times` times (it does at every boot). */
async function booted(name: string, times = 1): Promise<void> {
  for (let i = 0; i < 1200; i++) {
    if ((await consoleOf(name)).split('passthru-guest: ready').length - 1 >= times) return;
    await sleep(250);
  }
  throw new Error(`${name} did not boot ${times} time(s): ${(await consoleOf(name)).slice(-1500)}`);
}

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const socket = daemon?.client.target ?? '';
  return new Promise((resolve) => {
    execFile(
      'node',
      ['--import', 'tsx', join(REPO_ROOT, 'src/cli/main.ts'), '-c', socket, ...args],
      { cwd: REPO_ROOT },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

test('suspend, resume, dominfo, reboot in place, shutdown by the power button; autostart', {
  skip: typeof env === 'string' ? env : false,
  timeout: 600_000,
}, async () => {
  if (typeof env === 'string' || !daemon) return;
  const client = daemon.client;
  await client.post('/domains', { xml: domainXml(env, 'life1') });
  await client.post('/domains/life1/start');
  await booted('life1');

  await client.post('/domains/life1/suspend');
  assert.equal((await cli('domstate', 'life1', '--reason')).stdout, 'paused (user)\n');
  await client.post('/domains/life1/resume');
  const info = await client.get<DomainInfo>('/domains/life1/info');
  assert.equal(info.state, 'running');
  assert.equal(info.reason, 'unpaused');
  assert.equal(info.vcpus, 1);
  assert.equal(info.memoryKiB, 256 * 1024);
  assert.ok((info.cpuTimeSeconds ?? 0) > 0, 'QEMU has used CPU time');
  assert.ok(info.uptimeSeconds !== undefined);

  // Reboot: down through ACPI, back up in the same QEMU (same pid), the guest boots again.
  const rebooted = await client.post<ShutdownResult>('/domains/life1/reboot', { timeoutMs: 120_000 });
  assert.equal(rebooted.done, true);
  assert.equal(rebooted.domain.pid, info.pid);
  await booted('life1', 2);

  const down = await cli('shutdown', 'life1', '--timeout', '120');
  assert.equal(down.code, 0, down.stderr);
  assert.equal(down.stdout, "Domain 'life1' is shut off\n");
  assert.equal((await cli('domstate', 'life1', '--reason')).stdout, 'shut off (shutdown)\n');

  // A guest that ignores the button: the timeout answer, exit 2, still running.
  await client.post('/domains', { xml: domainXml(env, 'life2', ' passthru.noacpi') });
  await client.post('/domains/life2/start');
  await booted('life2');
  const ignored = await cli('shutdown', 'life2', '--timeout', '5');
  assert.equal(ignored.code, 2);
  assert.match(ignored.stderr, /domain 'life2' did not shut down within 5 s; it is still running/);
  assert.equal((await client.get<DomainInfo>('/domains/life2/info')).state, 'running');
  await client.post('/domains/life2/destroy');
  assert.equal((await cli('domstate', 'life2', '--reason')).stdout, 'shut off (destroyed)\n');

  // Autostart: a daemon that starts starts it.
  assert.equal((await cli('autostart', 'life1')).code, 0);
  await daemon.stop();
  daemon = await startDaemon(dir);
  const after = await daemon.client.get<DomainInfo>('/domains/life1/info');
  assert.equal(after.state, 'running');
  assert.equal(after.autostart, true);
  await daemon.client.post('/domains/life1/destroy');
  assert.equal((await cli('autostart', 'life1', '--disable')).code, 0);
  assert.equal((await daemon.client.get<DomainInfo>('/domains/life1/info')).autostart, false);
});
