import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createSimHost } from '../../src/host/sim/create.ts';
import type { InterfaceRow, MigrationReport } from '../../src/protocol/wire.ts';
import { startDaemon, type TestDaemon, vfRow, vfState } from '../helpers/daemon.ts';
import type { GuestNic } from './helpers/console.ts';
import { e2eGuest } from './helpers/guest.ts';
import {
  assertMacFollowed,
  consoleOf,
  enslavedVf,
  guestDomainXml,
  nicName,
  stopHosts,
  summaryOn,
  waitNicRemoved,
  waitRound,
} from './helpers/migration.ts';

/**
 * [seed 002] hostdev-hybrid through passthrud on two sim hosts (the X710 profile), real QEMU
 * (TCG) and the test guest with net_failover. One interface becomes a VF and a virtio standby
 * with one MAC; the guest's console, the VF tables and the sim switch are the witnesses. On the
 * sim the standby's macvtap is QEMU's user-mode network, as for every direct NIC (docs/nics.md).
 */
const g = e2eGuest();
const skip = typeof g === 'string' ? g : false;
const PF = 'pci_0000_06_00_0';
const PF_NETDEV = 'enp6s0f0';

let dir = '';
let a: TestDaemon;
let b: TestDaemon;

before(async () => {
  if (skip) return;
  dir = await mkdtemp(join(tmpdir(), 'pt-hy-'));
  const start = async (name: string): Promise<TestDaemon> => {
    await createSimHost(join(dir, name, 'host'), 'intel-x710-2port');
    return startDaemon(join(dir, name));
  };
  [a, b] = await Promise.all([start('a'), start('b')]);
});
after(async () => {
  if (!skip) await stopHosts([a, b], dir);
});

const stateDir = (d: TestDaemon): string => join(dir, d === a ? 'a' : 'b', 'state');
const hostDir = (d: TestDaemon): string => join(dir, d === a ? 'a' : 'b', 'host');
const summary = summaryOn;
const socketOf = (d: TestDaemon): string => (d.client.endpoint.kind === 'unix' ? d.client.endpoint.path : '');

/** One failover master holding the virtio standby and the VF (the sim's e1000e), both with `mac`. */
const pairEnslaved =
  (mac: string) =>
  (r: GuestNic[]): boolean => {
    const vf = r.find((n) => n.driver === 'e1000e' && n.mac === mac && n.master !== '-');
    const standby = r.find((n) => n.driver === 'virtio_net' && n.mac === mac && n.master !== '-');
    return vf?.master !== undefined && vf.master === standby?.master;
  };

/** The pair's guest addresses: [VF, standby] from an XML text. */
function pairAddresses(xml: string): [string, string] {
  const iface = /<interface type='hostdev-hybrid'[\s\S]*?<\/interface>/.exec(xml)?.[0] ?? '';
  const standby = /<standby>[\s\S]*?<\/standby>/.exec(iface)?.[0] ?? '';
  const addrOf = (s: string): string =>
    /<address type='pci' domain='0x0000' bus='(0x[0-9a-f]+)' slot='(0x[0-9a-f]+)' function='(0x[0-9a-f])'\/>/
      .exec(s)
      ?.slice(1)
      .join(':') ?? '';
  return [addrOf(iface.replace(standby, '').replace(/<source>[\s\S]*?<\/source>/, '')), addrOf(standby)];
}

/** domiflist rows until `ok` (bounded): QEMU shows the primary once the guest negotiated. */
async function rowsUntil(d: TestDaemon, name: string, ok: (rows: InterfaceRow[]) => boolean): Promise<InterfaceRow[]> {
  for (let i = 0; ; i++) {
    const rows = await d.client.get<InterfaceRow[]>(`/domains/${name}/interfaces`);
    if (ok(rows) || i >= 300) return rows;
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('hostdev-hybrid: one MAC on a VF and a virtio standby enslaved to one failover master; domiflist shows the pair; by address it migrates to B; destroy restores the VF', {
  skip,
  timeout: 300_000,
}, async () => {
  if (typeof g === 'string') return;
  const name = 'hy-start';
  const mac = '52:54:00:fa:44:01';
  const vf = 3;
  const before = vfState(await vfRow(a.client, PF, vf));
  await a.client.post('/domains', {
    xml: guestDomainXml(
      name,
      g,
      `<interface type='hostdev-hybrid' managed='yes'>
      <mac address='${mac}'/>
      <source><address type='pci' domain='0x0000' bus='0x06' slot='0x02' function='0x${vf}'/></source>
      <vlan><tag id='42'/></vlan>
    </interface>`,
    ),
  });
  const { xml: persistent } = await a.client.get<{ xml: string }>(`/domains/${name}/xml?inactive=1`);
  const defined = pairAddresses(persistent);
  assert.ok(defined[0] && defined[1] && defined[0] !== defined[1], `two guest addresses at define: ${persistent}`);

  await a.client.post(`/domains/${name}/start`);
  // The VF is programmed like a hostdev interface's.
  const row = await vfRow(a.client, PF, vf);
  assert.equal(row.mac, mac);
  assert.equal(row.vlan, 42);
  const rounds = await waitRound(consoleOf(stateDir(a), name), pairEnslaved(mac), 150_000, 'the pair enslaved on A');
  const pair = rounds.find(pairEnslaved(mac)) ?? [];
  assert.equal(new Set(pair.filter((n) => n.master !== '-').map((n) => n.mac)).size, 1, 'one MAC');

  // The live XML: both addresses as defined, the standby on the VF's PF.
  const { xml: live } = await a.client.get<{ xml: string }>(`/domains/${name}/xml`);
  assert.deepEqual(pairAddresses(live), defined);
  assert.match(live, new RegExp(`<standby>\\s*<source dev='${PF_NETDEV}' mode='bridge'/>`));

  const rows = await rowsUntil(a, name, (r) => r.every((x) => x.guestVisible));
  assert.deepEqual(
    rows.map((r) => [r.type, r.failover, r.mac, r.vf, r.guestVisible]),
    [
      ['hostdev-hybrid', 'standby', mac, undefined, true],
      ['hostdev-hybrid', 'primary', mac, `0000:06:02.${vf}`, true],
    ],
  );
  assert.equal(rows[0]?.model, 'virtio');
  assert.equal(rows[1]?.alias, 'hostdev0');

  // Hot-unplugging it, or hot-plugging another, is refused naming it; nothing changes.
  await assert.rejects(
    a.client.post(`/domains/${name}/devices/hostdev0/detach`, { live: true }),
    (e: unknown) =>
      e instanceof Error && e.message.includes(`interface ${mac}: a hostdev-hybrid interface cannot be hot-unplugged`),
  );
  const other = '52:54:00:fa:44:03';
  const otherBefore = vfState(await vfRow(a.client, PF, 4));
  await assert.rejects(
    a.client.post(`/domains/${name}/devices`, {
      xml: `<interface type='hostdev-hybrid' managed='yes'><mac address='${other}'/>
        <source><address type='pci' domain='0x0000' bus='0x06' slot='0x02' function='0x4'/></source></interface>`,
      live: true,
    }),
    (e: unknown) =>
      e instanceof Error && e.message.includes(`interface ${other}: a hostdev-hybrid interface cannot be hot-plugged`),
  );
  assert.deepEqual(vfState(await vfRow(a.client, PF, 4)), otherBefore);
  assert.equal((await a.client.get<InterfaceRow[]>(`/domains/${name}/interfaces`)).length, 2);

  // By address it migrates too: B prepares the same VF of its own PF and its own standby; A's
  // VF comes back as it was. Then destroy on B restores B's.
  const beforeB = vfState(await vfRow(b.client, PF, vf));
  const report = await a.client.post<MigrationReport>(`/domains/${name}/migrate`, {
    dest: `unix:${socketOf(b)}`,
    live: true,
  });
  assert.deepEqual(report.unplugged, ['hostdev0']);
  assert.equal((await summary(a, name))?.state, 'shutoff');
  assert.deepEqual(vfState(await vfRow(a.client, PF, vf)), before);
  const rowB = await vfRow(b.client, PF, vf);
  assert.deepEqual([rowB.mac, rowB.vlan], [mac, 42]);
  const { xml: liveB } = await b.client.get<{ xml: string }>(`/domains/${name}/xml`);
  assert.deepEqual(pairAddresses(liveB), defined);
  await waitRound(consoleOf(stateDir(b), name), pairEnslaved(mac), 150_000, 'the pair enslaved on B');
  await b.client.post(`/domains/${name}/destroy`);
  assert.deepEqual(vfState(await vfRow(b.client, PF, vf)), beforeB);
});

test('a hostdev-hybrid network: the guest migrates A -> B keeping its network; the VF leaves, B gives its own, enslaved again; the switch moves the MAC in order; A restored; a rollback back to A keeps the guest on B with its pair', {
  skip,
  timeout: 360_000,
}, async (t) => {
  if (typeof g === 'string') return;
  const name = 'hy-mig';
  const mac = '52:54:00:fa:44:02';
  const [vfA, vfB] = [1, 6];
  const network = (fn: number): string => `<network>
  <name>hy</name>
  <forward mode='hostdev-hybrid' managed='yes'>
    <address type='pci' domain='0x0000' bus='0x06' slot='0x02' function='0x${fn}'/>
  </forward>
</network>`;
  for (const [d, fn] of [
    [a, vfA],
    [b, vfB],
  ] as const) {
    await d.client.post('/networks', { xml: network(fn) });
    await d.client.post('/networks/hy/start');
  }
  const beforeA = vfState(await vfRow(a.client, PF, vfA));
  const beforeB = vfState(await vfRow(b.client, PF, vfB));
  try {
    await a.client.post('/domains', {
      xml: guestDomainXml(
        name,
        g,
        `<interface type='network'><mac address='${mac}'/><source network='hy'/></interface>`,
      ),
    });
    const { xml: persistent } = await a.client.get<{ xml: string }>(`/domains/${name}/xml?inactive=1`);
    assert.match(
      persistent,
      /<source network='hy'\/>\s*<standby>\s*<address type='pci'/,
      'the standby address at define',
    );
    await a.client.post(`/domains/${name}/start`);
    const consoleA = consoleOf(stateDir(a), name);
    await waitRound(consoleA, pairEnslaved(mac), 150_000, 'the pair enslaved on A');
    assert.equal((await vfRow(a.client, PF, vfA)).mac, mac);
    const { xml: liveA } = await a.client.get<{ xml: string }>(`/domains/${name}/xml`);
    const addressesA = pairAddresses(liveA);

    // B's 'hy' a plain hostdev network: the guest's standby would have nowhere to go there, so
    // the check refuses before anything moves.
    await b.client.post('/networks/hy/destroy');
    await b.client.delete('/networks/hy');
    await b.client.post('/networks', { xml: network(vfB).replace('hostdev-hybrid', 'hostdev') });
    await b.client.post('/networks/hy/start');
    await assert.rejects(
      a.client.post(`/domains/${name}/migrate`, { dest: `unix:${socketOf(b)}`, live: true }),
      (e: unknown) =>
        e instanceof Error && e.message.includes("network 'hy' of the destination is not a hostdev-hybrid network"),
    );
    assert.equal((await summary(a, name))?.state, 'running');
    assert.equal(await summary(b, name), undefined);
    assert.deepEqual(vfState(await vfRow(b.client, PF, vfB)), beforeB);
    await b.client.post('/networks/hy/destroy');
    await b.client.delete('/networks/hy');
    await b.client.post('/networks', { xml: network(vfB) });
    await b.client.post('/networks/hy/start');

    const t0 = Date.now();
    const report = await a.client.post<MigrationReport>(`/domains/${name}/migrate`, {
      dest: `unix:${socketOf(b)}`,
      live: true,
    });
    t.diagnostic(
      `hybrid migration (load ${(await import('node:os')).loadavg()[0]?.toFixed(1)}): ${JSON.stringify({ ...report, phases: undefined })}`,
    );
    assert.deepEqual(report.unplugged, ['hostdev0']);
    assert.ok(report.statuses.includes('wait-unplug'), report.statuses.join(' > '));

    // A: the guest gone, its VF restored exactly. B: running on its own VF of 'hy', programmed.
    assert.equal((await summary(a, name))?.state, 'shutoff');
    assert.deepEqual(vfState(await vfRow(a.client, PF, vfA)), beforeA);
    assert.equal((await summary(b, name))?.state, 'running');
    assert.equal((await vfRow(b.client, PF, vfB)).mac, mac);
    const { xml: liveB } = await b.client.get<{ xml: string }>(`/domains/${name}/xml`);
    assert.match(liveB, /<interface type='hostdev-hybrid'[^>]*>[\s\S]*function='0x6'/);
    assert.match(liveB, new RegExp(`<standby>\\s*<source dev='${PF_NETDEV}' mode='bridge'/>`));
    assert.deepEqual(pairAddresses(liveB), addressesA, 'both guest addresses kept across the migration');

    // The guest kept running: it lost the VF (on A, or on B before the new one is probed) and got
    // B's enslaved beside the standby.
    const consoleB = consoleOf(stateDir(b), name);
    const roundsB = await waitRound(consoleB, pairEnslaved(mac), 150_000, 'the pair enslaved on B');
    t.diagnostic(`migrate request -> pair enslaved on B: ${Date.now() - t0} ms`);
    const roundsA = await waitRound(consoleA, () => true, 1_000, 'rounds on A');
    const firstA = roundsA.findIndex(enslavedVf(mac));
    // The guest's kernel reported the VF's netdev gone (on A, or printed after the switch-over on B).
    await waitNicRemoved([consoleA, consoleB], nicName(roundsA, 'e1000e', mac), 10_000);
    // The standby, with the MAC, never left: every round from the pair on A to the pair on B has it.
    const rounds = [...roundsA.slice(firstA), ...roundsB];
    const without = rounds.find((r) => !r.some((n) => n.driver === 'virtio_net' && n.mac === mac));
    assert.equal(without, undefined, `a round without the standby: ${JSON.stringify(without)}`);

    // The switches: the MAC left A's VF at UNPLUG_PRIMARY and went on B's VF once QEMU plugged it.
    assertMacFollowed(hostDir(a), hostDir(b), mac, vfB);

    const rows = await rowsUntil(b, name, (r) => r.every((x) => x.guestVisible));
    assert.deepEqual(
      rows.map((r) => [r.failover, r.mac, r.vf, r.guestVisible]),
      [
        ['standby', mac, undefined, true],
        ['primary', mac, `0000:06:02.${vfB}`, true],
      ],
    );

    // Back to A, with A's incoming QEMU killed once B's guest let go of its VF: a rollback. The
    // guest runs on at B with its standby as it was and its VF plugged back and enslaved; A gave
    // back everything.
    const killer = new Promise<void>((resolve) => {
      void b.client.events((e) => {
        if (e.type !== 'migration' || e.role !== 'source' || e.phase !== 'unplugged') return false;
        void summary(a, name).then((x) => {
          if (x?.pid) process.kill(x.pid, 'SIGKILL');
          resolve();
        });
        return true;
      });
    });
    const roundsBefore = (await waitRound(consoleB, () => true, 1_000, 'rounds on B')).length;
    await assert.rejects(b.client.post(`/domains/${name}/migrate`, { dest: `unix:${socketOf(a)}`, live: true }));
    await killer;
    assert.equal((await summary(b, name))?.state, 'running');
    await waitRound(
      consoleB,
      (r, i) => i >= roundsBefore && pairEnslaved(mac)(r),
      120_000,
      'the pair enslaved again on B after the rollback',
    );
    const { xml: afterRollback } = await b.client.get<{ xml: string }>(`/domains/${name}/xml`);
    assert.match(afterRollback, new RegExp(`<standby>\\s*<source dev='${PF_NETDEV}' mode='bridge'/>`));
    assert.deepEqual(pairAddresses(afterRollback), addressesA);
    for (let i = 0; i < 100 && (await summary(a, name))?.state === 'migrating'; i++)
      await new Promise((r) => setTimeout(r, 100));
    assert.notEqual((await summary(a, name))?.state, 'running');
    assert.deepEqual(vfState(await vfRow(a.client, PF, vfA)), beforeA);

    await b.client.post(`/domains/${name}/destroy`);
    assert.deepEqual(vfState(await vfRow(b.client, PF, vfB)), beforeB);
  } finally {
    for (const d of [a, b]) {
      await d.client.post('/networks/hy/destroy').catch(() => undefined);
      await d.client.delete('/networks/hy').catch(() => undefined);
    }
  }
});
