import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { PassthruError } from '../../src/conf/error.ts';
import type { Daemon } from '../../src/daemon/daemon.ts';
import { openDaemon } from '../../src/daemon/open.ts';
import { createSimHost } from '../../src/host/sim/create.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { vfDomainXml } from '../helpers/domains.ts';

/** What the host cannot give is refused at start, before anything is taken: the VF stays on
 *  its driver with its row unchanged, no QEMU is tried (the emulator named does not exist, so
 *  reaching it would fail differently), and the domain stays shut off. */
let dir = '';
let daemon: Daemon;
const PF = 'pci_0000_06_00_0';

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'passthru-resources-'));
  await createSimHost(join(dir, 'host'), 'intel-x710-2port');
  daemon = await openDaemon({ host: `sim:${join(dir, 'host')}`, stateDir: join(dir, 'state'), log: silentLogger() });
});
after(async () => {
  await daemon.close();
  await rm(dir, { recursive: true, force: true });
});

const CASES: readonly [string, (xml: string) => string, string, RegExp][] = [
  [
    'memory beyond the host',
    (x) => x.replace("<memory unit='MiB'>128</memory>", "<memory unit='TiB'>64</memory>"),
    'INVALID_ARG',
    /domain bad asks for 67108864 MiB of memory; the host has \d+ MiB/,
  ],
  [
    'vCPUs beyond the host',
    (x) => x.replace('<vcpu>1</vcpu>', '<vcpu>4000</vcpu>'),
    'INVALID_ARG',
    /domain bad asks for 4000 vCPUs; the host has \d+ CPUs online/,
  ],
  [
    'a vcpupin CPU the host lacks',
    (x) => x.replace('<os>', "<cputune><vcpupin vcpu='0' cpuset='900'/></cputune><os>"),
    'INVALID_ARG',
    /<vcpupin vcpu='0' cpuset> names CPU 900, which the host does not have/,
  ],
  [
    'an emulatorpin CPU the host lacks',
    (x) => x.replace('<os>', "<cputune><emulatorpin cpuset='0,901'/></cputune><os>"),
    'INVALID_ARG',
    /<emulatorpin cpuset> names CPU 901/,
  ],
  [
    'a <vcpu cpuset> the host lacks',
    (x) => x.replace('<vcpu>1</vcpu>', "<vcpu cpuset='902'>1</vcpu>"),
    'INVALID_ARG',
    /<vcpu cpuset> names CPU 902/,
  ],
  [
    'a NUMA node the host lacks',
    (x) => x.replace('<os>', "<numatune><memory mode='strict' nodeset='7'/></numatune><os>"),
    'INVALID_ARG',
    /nodeset names NUMA node 7, which the host does not have/,
  ],
  [
    'a hugepage size the host has no pool of',
    (x) => x.replace('<os>', "<memoryBacking><hugepages><page size='3' unit='M'/></hugepages></memoryBacking><os>"),
    'INVALID_ARG',
    /the host has no 3072 KiB hugepages/,
  ],
  [
    'an unknown parent netdev',
    (x) =>
      x.replace('</devices>', "<interface type='direct'><source dev='nodev9' mode='bridge'/></interface></devices>"),
    'NO_DEVICE',
    /parent network device 'nodev9' of a macvtap does not exist/,
  ],
];

for (const [what, edit, code, re] of CASES) {
  test(`refused before anything changes: ${what}`, async () => {
    const before0 = await daemon.handle({ kind: 'nodedevVfTable', name: PF });
    await daemon.handle({ kind: 'define', xml: edit(vfDomainXml('bad', 2)) });
    await assert.rejects(daemon.handle({ kind: 'start', name: 'bad' }), (e: unknown) => {
      assert.ok(e instanceof PassthruError, String(e));
      assert.equal(e.code, code, e.message);
      assert.match(e.message, re);
      return true;
    });
    assert.deepEqual(await daemon.handle({ kind: 'nodedevVfTable', name: PF }), before0);
    const [summary] = await daemon.handle({ kind: 'list' });
    assert.equal(summary?.state, 'shutoff');
    await daemon.handle({ kind: 'undefine', name: 'bad' });
  });
}
