import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { DeviceChange, XmlBody } from '../../src/protocol/wire.ts';
import { simDaemonFixture } from '../helpers/daemon.ts';
import { waitForScan } from './helpers/console.ts';
import { e2eGuest } from './helpers/guest.ts';
import { startBareGuest } from './helpers/guest-xml.ts';

/**
 * Hot-plug of a NIC QEMU backs (user-mode networking on the sim host): netdev_add + device_add
 * with the command line's property builders; the tiny guest's console shows the virtio NIC with
 * its MAC; detach (found by MAC) takes it out of the guest and removes its backend.
 */
const env = e2eGuest();
const skip = typeof env === 'string' ? env : false;
const fixture = simDaemonFixture('pt-hpnic', 'intel-x710-2port', skip !== false);
const MAC = '52:54:00:00:0d:01';
const nic = `<interface type='user'><mac address='${MAC}'/><model type='virtio'/></interface>`;

test('a user-mode virtio NIC hot-plugged into a running guest is seen with its MAC, and unplugged', {
  skip,
}, async () => {
  if (typeof env === 'string') throw new Error(env);
  const { client } = fixture.current();
  const console = await startBareGuest(client, env, 'nic', fixture.dir());

  const r = await client.post<DeviceChange>('/domains/nic/devices', { xml: nic });
  assert.equal(r.devices.length, 1);
  const seen = await waitForScan(console, (nics) => nics.some((n) => n.mac === MAC));
  assert.equal(seen.find((n) => n.mac === MAC)?.driver, 'virtio_net');
  const live = (await client.get<XmlBody>('/domains/nic/xml')).xml;
  assert.match(live, new RegExp(`<interface type='user'>\\s*<mac address='${MAC}'/>`));
  assert.match(live, /<alias name='net0'\/>/);

  const d = await client.post<DeviceChange>('/domains/nic/devices/detach', { xml: nic, timeoutMs: 60_000 });
  assert.equal(d.state, 'detached', d.message);
  await waitForScan(console, (nics) => nics.length === 0);
  assert.doesNotMatch((await client.get<XmlBody>('/domains/nic/xml')).xml, /type='user'/);
  // Its backend went with it: the same NIC plugs again under the same ids.
  await client.post<DeviceChange>('/domains/nic/devices', { xml: nic });
  await waitForScan(console, (nics) => nics.some((n) => n.mac === MAC));
  await client.post('/domains/nic/destroy');
});
