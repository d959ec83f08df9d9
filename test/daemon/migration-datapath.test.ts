import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { test } from 'node:test';
import { pino } from 'pino';
import { parseMac } from '../../src/conf/mac.ts';
import { parsePciAddress } from '../../src/conf/pci-address.ts';
import { steer } from '../../src/daemon/migration/datapath.ts';
import { adminMacDatapath } from '../../src/host/datapath.ts';
import { createSimHost } from '../../src/host/sim/create.ts';
import { openSimHost } from '../../src/host/sim/kernel.ts';

/**
 * The daemon's side of the datapath (daemon/migration/datapath.ts) over the linux one
 * (host/datapath.ts), on the sim kernel's netlink model: a move shows in the VF table, and a
 * move the host refuses is logged as an error and never fails the caller (the migration).
 */
test('steer: the linux datapath moves the admin MAC; a refused move is logged, not thrown; no datapath only logs', async () => {
  const base = await mkdtemp(join(tmpdir(), 'passthru-steer-'));
  try {
    await createSimHost(join(base, 'host'), 'intel-82576');
    const kernel = await openSimHost(join(base, 'host'));
    const lines: { msg: string; err?: string; to?: string }[] = [];
    const log = pino({ level: 'info' }, { write: (s: string) => lines.push(JSON.parse(s) as (typeof lines)[number]) });
    const link = await kernel.sysfs.readLink('/sys/class/net/enp1s0f0/device/virtfn2');
    assert.ok(link);
    const mac = parseMac('52:54:00:cc:00:02');
    const primary = { alias: 'hostdev0', address: parsePciAddress(basename(link)), mac, standby: 'net0' };
    const vf2 = async (): Promise<string | undefined> => (await kernel.vfTable('enp1s0f0'))[2]?.mac;
    const ctx = { peers: { datapath: adminMacDatapath(kernel) }, log };

    await steer(ctx, primary, 'vf', 'FAILOVER_NEGOTIATED');
    assert.equal(await vf2(), mac);
    await steer(ctx, primary, 'standby', 'UNPLUG_PRIMARY');
    assert.equal(await vf2(), '00:00:00:00:00:00');
    assert.deepEqual(
      lines.map((l) => [l.msg, l.to]),
      [
        ['datapath steered', 'vf2'],
        ['datapath steered', 'standby'],
      ],
    );

    // Another VF took the MAC meanwhile: the move back is refused, logged, and steer resolves.
    await kernel.setVf('enp1s0f0', 5, { mac });
    await steer(ctx, primary, 'vf', 'rollback');
    assert.equal(await vf2(), '00:00:00:00:00:00', 'VF 2 unchanged');
    const last = lines.at(-1);
    assert.equal(last?.msg, 'datapath move failed');
    assert.match(last?.err ?? '', /already the admin MAC of VF 5 of PF enp1s0f0/);

    await steer({ peers: {}, log }, primary, 'vf', 'FAILOVER_NEGOTIATED');
    assert.equal(lines.at(-1)?.msg, 'datapath move not modelled on this host');
    assert.equal(await vf2(), '00:00:00:00:00:00');
  } finally {
    await rm(base, { recursive: true, force: true });
  }
});
