import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readDomainXml } from '../../src/conf/domain/read.ts';
import { PassthruError } from '../../src/conf/error.ts';
import { parsePciAddress } from '../../src/conf/pci-address.ts';
import { checkUnit } from '../../src/daemon/hotplug.ts';
import { findDocumentDevices, withDocument } from '../../src/daemon/device-doc.ts';
import { readInventory } from '../../src/host/inventory.ts';
import { createSimHost } from '../../src/host/sim/create.ts';
import { openSimHost } from '../../src/host/sim/kernel.ts';
import { completeDefinition } from '../../src/qemu/define-def.ts';
import { planHotplugDevices } from '../../src/qemu/hotplug.ts';
import { prepareLiveDef } from '../../src/qemu/live-def.ts';

const bcm = (f: number) => parsePciAddress(`0000:02:00.${f}`);

async function inventoryOf(profile: string) {
  const dir = await mkdtemp(join(tmpdir(), 'pt-unit-'));
  try {
    await createSimHost(join(dir, 'host'), profile);
    return await readInventory((await openSimHost(join(dir, 'host'))).sysfs);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('multifunction as one unit: a partial attach or detach is refused naming the missing functions', async () => {
  const inv = await inventoryOf('broadcom-bcm5719');
  assert.throws(
    () => checkUnit(inv, [bcm(0), bcm(1)], [], 'attach'),
    (e: unknown) =>
      e instanceof PassthruError &&
      e.code === 'OPERATION_INVALID' &&
      /0000:02:00\.x is a multifunction device: .* lacks 0000:02:00\.2, 0000:02:00\.3$/.test(e.message),
  );
  assert.equal(checkUnit(inv, [bcm(3), bcm(0), bcm(2), bcm(1)], [], 'attach'), true);
  const held = [bcm(0), bcm(1), bcm(2), bcm(3)];
  assert.throws(() => checkUnit(inv, [bcm(2)], held, 'detach'), /lacks 0000:02:00\.0, 0000:02:00\.1, 0000:02:00\.3/);
  assert.equal(checkUnit(inv, held, held, 'detach'), true);
  // VFs are never a unit, even eight to a slot.
  const x710 = await inventoryOf('intel-x710-2port');
  assert.equal(checkUnit(x710, [parsePciAddress('0000:06:02.1')], [], 'attach'), false);
});

const base = `<domain type='kvm'><name>u</name><memory>262144</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='q35'>hvm</type></os><devices>
<interface type='hostdev' managed='yes'><mac address='52:54:00:00:00:09'/>
<source><address type='pci' domain='0x0000' bus='0x06' slot='0x02' function='0x0'/></source></interface>
</devices></domain>`;

const card = `<devices>${[0, 1, 2, 3]
  .map(
    (f) =>
      `<hostdev mode='subsystem' type='pci' managed='yes'${f === 2 ? " assigned='no'" : ''}><source><address domain='0x0000' bus='0x02' slot='0x00' function='0x${f}'/></source></hostdev>`,
  )
  .join('\n')}</devices>`;

test('a multifunction card is planned into one guest slot, function 0 first in host order, unassigned left out', () => {
  const live = prepareLiveDef(completeDefinition(readDomainXml(base, 'u'), { spareRootPorts: 2 }));
  const { added } = planHotplugDevices(live, withDocument(live, card, true), true);
  assert.deepEqual(
    added.map((d) => [d.alias, d.guestAddress]),
    [
      ['hostdev1', { type: 'pci', domain: 0, bus: 2, slot: 0, function: 0, multifunction: true }],
      ['hostdev2', { type: 'pci', domain: 0, bus: 2, slot: 0, function: 1 }],
      ['hostdev3', undefined],
      ['hostdev4', { type: 'pci', domain: 0, bus: 2, slot: 0, function: 2 }],
    ],
  );
  // Single devices each take a free root port; with none left the answer says how to get one.
  const one = `<hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0x0000' bus='0x06' slot='0x02' function='0x5'/></source></hostdev>`;
  const two = planHotplugDevices(
    live,
    withDocument(live, `<devices>${one}${one.replace("0x5'", "0x6'")}</devices>`, true),
    false,
  );
  assert.deepEqual(
    two.added.map((d) => d.guestAddress?.type === 'pci' && d.guestAddress.bus),
    [2, 3],
  );
  assert.throws(
    () =>
      planHotplugDevices(
        live,
        withDocument(
          live,
          `<devices>${one}${one.replace("0x5'", "0x6'")}${one.replace("0x5'", "0x7'")}</devices>`,
          true,
        ),
        false,
      ),
    /no free PCI slot for hot-plugging hostdev3/,
  );
});

test('device documents: errors point at the document, a device already there or unknown is refused', () => {
  const live = prepareLiveDef(completeDefinition(readDomainXml(base, 'u')));
  assert.throws(
    () => withDocument(live, "<hostdev mode='subsystem' type='pci'>\n  <bogus/>\n</hostdev>", true),
    (e: unknown) => e instanceof PassthruError && e.line === 2,
  );
  assert.throws(
    () =>
      withDocument(
        live,
        "<interface type='hostdev' managed='yes'><source><address type='pci' domain='0x0000' bus='0x06' slot='0x02' function='0x0'/></source></interface>",
        true,
      ),
    (e: unknown) => e instanceof PassthruError && e.message.includes('0000:06:02.0'),
  );
  assert.throws(() => withDocument(live, '<disk/>', true), PassthruError);
  const [found] = findDocumentDevices(
    live,
    "<interface type='hostdev'><source><address type='pci' domain='0x0000' bus='0x06' slot='0x02' function='0x0'/></source></interface>",
  );
  assert.equal(found?.alias, 'hostdev0');
  // A <hostdev> naming an interface's VF stands for the interface (libvirt detaches a hostdev
  // with a parent net through its net); one naming a function the domain does not hold is refused.
  const [redirected] = findDocumentDevices(
    live,
    "<hostdev mode='subsystem' type='pci'><source><address domain='0x0000' bus='0x06' slot='0x02' function='0x0'/></source></hostdev>",
  );
  assert.equal(redirected, found);
  assert.throws(
    () =>
      findDocumentDevices(
        live,
        "<hostdev mode='subsystem' type='pci'><source><address domain='0x0000' bus='0x06' slot='0x02' function='0x7'/></source></hostdev>",
      ),
    (e: unknown) => e instanceof PassthruError && e.code === 'NO_DEVICE',
  );
});
