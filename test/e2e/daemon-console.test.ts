import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Client } from '../../src/protocol/client.ts';
import { PassthruError } from '../../src/conf/error.ts';
import { createSimHost } from '../../src/host/sim/create.ts';
import { startDaemon, type TestDaemon } from '../helpers/daemon.ts';
import { REPO_ROOT } from './helpers/env.ts';
import { type E2eGuest, e2eGuest } from './helpers/guest.ts';

/**
 * `passthru console` as a user runs it: in a terminal. The CLI runs under `script` (util-linux),
 * which gives it a pseudo-terminal (so it goes raw, as on a real terminal) and relays what the
 * test types. The witness is the guest's shell: its prompt, and the output of a command only
 * the guest can compute.
 */
const env = e2eGuest();
let dir = '';
let daemon: TestDaemon | undefined;
let client: Client;

before(async () => {
  if (typeof env === 'string') return;
  dir = await mkdtemp(join(tmpdir(), 'pt-console-'));
  await createSimHost(join(dir, 'host'), 'intel-x710-2port');
  daemon = await startDaemon(dir);
  client = daemon.client;
});

after(async () => {
  await client?.post('/domains/con1/destroy').catch(() => undefined);
  await daemon?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function domainXml(g: E2eGuest): string {
  // No <serial type='file'>: the port is a pty in libvirt's words, which passthrud holds.
  return `<domain type='kvm'>
  <name>con1</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>${g.kernel}</kernel>
    <initrd>${g.initrd}</initrd>
    <cmdline>${g.append}</cmdline>
  </os>
  <devices>
    <serial type='pty'>
      <target port='0'/>
    </serial>
  </devices>
</domain>
`;
}

/** The CLI in a pseudo-terminal; `seen` is everything the terminal showed so far. */
function inTerminal(args: string[]): { proc: ChildProcess; seen: () => string; exited: Promise<number | null> } {
  const cli = ['node', '--import', 'tsx', join(REPO_ROOT, 'src/cli/main.ts'), ...args].join(' ');
  const proc = spawn('script', ['-q', '-e', '-f', '-c', cli, '/dev/null'], {
    cwd: REPO_ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString('utf8')));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString('utf8')));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return { proc, seen: () => out, exited };
}

async function until(what: string, check: () => boolean, seconds: number, poke?: () => void): Promise<void> {
  for (let i = 0; i < seconds * 10; i++) {
    if (check()) return;
    if (poke && i % 20 === 0) poke();
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}

test('passthru console: the guest prompt, a command and its output, Ctrl+] leaves; the log keeps it', {
  skip: typeof env === 'string' ? env : false,
  timeout: 300_000,
}, async (t) => {
  if (typeof env === 'string') return;
  await client.post('/domains', { xml: domainXml(env) });

  // Not running yet: a clear error, no terminal taken.
  await assert.rejects(
    client.upgrade('/domains/con1/console', 'passthru-console'),
    (e: unknown) => e instanceof PassthruError && e.code === 'OPERATION_INVALID' && e.message.includes('not running'),
  );

  await client.post('/domains/con1/start');
  const term = inTerminal(['-c', client.target, 'console', 'con1']);
  try {
    await until('the console to attach', () => term.seen().includes('Escape character is ^]'), 60);
    // The shell prints its prompt when it starts and after every Enter.
    await until(
      'the guest prompt',
      () => term.seen().includes('passthru-guest# '),
      180,
      () => term.proc.stdin?.write('\r'),
    );
    const before = term.seen().length;
    const t0 = performance.now();
    term.proc.stdin?.write('echo pt-$((6*7))-ok\r');
    await until('the command output', () => term.seen().slice(before).includes('pt-42-ok'), 60);
    t.diagnostic(`console round trip (command typed -> its output shown): ${(performance.now() - t0).toFixed(0)} ms`);
    term.proc.stdin?.write(Buffer.from([0x1d]));
    assert.equal(await Promise.race([term.exited, sleep(30_000, 'still running')]), 0);
  } finally {
    if (term.proc.exitCode === null) term.proc.kill('SIGKILL');
  }
  const log = await readFile(join(dir, 'state', 'run', 'con1', 'console.log'), 'utf8');
  assert.match(log, /pt-42-ok/);
  assert.match(log, /passthru-guest: ready kernel/);

  // Still running after the terminal left.
  const list = await client.get<{ name: string; state: string }[]>('/domains');
  assert.equal(list.find((d) => d.name === 'con1')?.state, 'running');
});
