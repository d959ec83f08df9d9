import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { GuestConsole } from '../../src/daemon/console.ts';

/** A stand-in for QEMU's console chardev: a unix socket server with one client. */
async function withChardev(work: (dir: string, guest: Promise<Socket>) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'pt-con-'));
  const server = createServer();
  const guest = new Promise<Socket>((resolve) => server.once('connection', resolve));
  await new Promise<void>((r) => server.listen(join(dir, 'console.sock'), r));
  try {
    await work(dir, guest);
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const until = async (check: () => boolean): Promise<void> => {
  for (let i = 0; i < 200 && !check(); i++) await sleep(10);
  assert.ok(check());
};

test('the console log stays within its bound: at the bound it moves to .1 and starts again', async () => {
  await withChardev(async (dir, guest) => {
    const log = join(dir, 'console.log');
    const c = await GuestConsole.open(join(dir, 'console.sock'), log, { maxBytes: 100 });
    const g = await guest;
    const seen: Buffer[] = [];
    c.subscribe(
      (b) => seen.push(b),
      () => undefined,
    );
    for (let i = 0; i < 5; i++) {
      g.write(`line ${i} ${'x'.repeat(40)}\n`);
      await until(() => Buffer.concat(seen).toString().includes(`line ${i} `));
    }
    assert.ok(statSync(log).size <= 100, `console.log is ${statSync(log).size} bytes`);
    assert.ok(statSync(`${log}.1`).size <= 100);
    assert.match(readFileSync(log, 'utf8'), /line 4 /);
    // What an attached user types reaches the guest.
    const typed = new Promise<string>((r) => g.once('data', (d: Buffer) => r(d.toString())));
    c.write(Buffer.from('ls\r'));
    assert.equal(await typed, 'ls\r');
    // QEMU going away ends the console for its users.
    let ended = false;
    c.subscribe(
      () => undefined,
      () => (ended = true),
    );
    g.destroy();
    await until(() => ended && c.ended);
  });
});
