import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readlink, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { test } from 'node:test';
import { PassthruError } from '../../src/conf/error.ts';
import type { DeviceChange } from '../../src/protocol/wire.ts';
import { simDaemonFixture } from '../helpers/daemon.ts';
import { waitForScan } from './helpers/console.ts';
import { e2eGuest } from './helpers/guest.ts';
import { startBareGuest } from './helpers/guest-xml.ts';

/**
 * Multifunction as one unit [seed], end to end: the four functions of a simulated Broadcom
 * BCM5719 (tg3, one IOMMU group) are attached as one `<devices>` document to a running tiny
 * guest (TCG), function 0 last; the guest's console then lists four NICs in one slot with the
 * card's factory MACs. A request that lacks functions is refused naming them and changes
 * nothing. Detach with the same document takes all four out of the guest and gives them back
 * to tg3.
 */
const env = e2eGuest();
const skip = typeof env === 'string' ? env : false;
const fixture = simDaemonFixture('pt-mf', 'broadcom-bcm5719', skip !== false);
const MACS = ['70:10:6f:c1:00:01', '70:10:6f:c1:00:02', '70:10:6f:c1:00:03', '70:10:6f:c1:00:04'];

const fn = (f: number): string => `<hostdev mode='subsystem' type='pci' managed='yes'>
    <source><address type='pci' domain='0x0000' bus='0x02' slot='0x00' function='0x${f}'/></source>
  </hostdev>`;
const card = (functions: readonly number[]): string => `<devices>\n  ${functions.map(fn).join('\n  ')}\n</devices>`;

/** The driver of each of the card's functions, as the (simulated) kernel says. */
function drivers(): Promise<string[]> {
  const link = (f: number): string => join(fixture.dir(), 'host/sys/bus/pci/devices', `0000:02:00.${f}`, 'driver');
  return Promise.all([0, 1, 2, 3].map(async (f) => basename(await readlink(link(f)))));
}

const cli = (...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', '-c', join(fixture.dir(), 'api.sock'), ...args], {
    encoding: 'utf8',
  });

test('a four-function card plugged as one into a running guest: the guest sees four functions in one slot', {
  skip,
}, async (t) => {
  if (typeof env === 'string') throw new Error(env);
  const { client } = fixture.current();
  const console = await startBareGuest(client, env, 'mf', fixture.dir());
  assert.deepEqual(await drivers(), ['tg3', 'tg3', 'tg3', 'tg3']);

  // Three of four: refused, naming the missing one; nothing was taken from the host.
  await assert.rejects(
    client.post('/domains/mf/devices', { xml: card([0, 1, 2]) }),
    (e: unknown) => e instanceof PassthruError && /multifunction device: .* lacks 0000:02:00\.3$/.test(e.message),
  );
  assert.deepEqual(await drivers(), ['tg3', 'tg3', 'tg3', 'tg3']);

  const doc = join(fixture.dir(), 'card.xml');
  await writeFile(doc, card([0, 1, 2, 3]));
  const attached = cli('attach-device', 'mf', doc, '--live');
  assert.equal(attached.status, 0, attached.stderr);
  assert.deepEqual(await drivers(), ['vfio-pci', 'vfio-pci', 'vfio-pci', 'vfio-pci']);
  const seen = await waitForScan(console, (nics) => nics.length === 4);
  assert.deepEqual(seen.map((n) => n.mac).sort(), MACS);
  // One guest slot, functions 0..3, each function the host function of the same number.
  const slots = new Set(seen.map((n) => n.pci.slice(0, -2)));
  assert.equal(slots.size, 1, `one slot: ${seen.map((n) => n.pci).join(' ')}`);
  assert.deepEqual(
    seen.map((n) => [n.pci.slice(-1), n.mac]).sort(),
    MACS.map((m, f) => [String(f), m]),
  );
  t.diagnostic(`guest slot ${[...slots][0] ?? '?'}`);

  const r = await client.post<DeviceChange>('/domains/mf/devices/detach', {
    xml: card([0, 1, 2, 3]),
    timeoutMs: 60_000,
  });
  assert.equal(r.state, 'detached', r.message);
  assert.equal(r.devices.length, 4);
  await waitForScan(console, (nics) => nics.length === 0);
  assert.deepEqual(await drivers(), ['tg3', 'tg3', 'tg3', 'tg3']);
  await client.post('/domains/mf/destroy');
});
