import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Client } from '../../src/protocol/client.ts';
import { PassthruError } from '../../src/conf/error.ts';
import { buildApi } from '../../src/daemon/api.ts';
import type { Daemon } from '../../src/daemon/daemon.ts';
import { openDaemon } from '../../src/daemon/open.ts';
import { createSimHost } from '../../src/host/sim/create.ts';
import { openSimHost } from '../../src/host/sim/kernel.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import type { DaemonEvent } from '../../src/protocol/wire.ts';
import { vfDomainXml } from '../helpers/domains.ts';
import { within } from '../helpers/within.ts';
import { read } from '../conf/conformance/libvirt.ts';
import { formatDomainXml } from '../../src/conf/domain/format.ts';
import { readDomainXml } from '../../src/conf/domain/read.ts';
import { completeDefinition } from '../../src/qemu/define-def.ts';
import { chooseAccel, readProcModules } from '../../src/qemu/accel.ts';
import { nativeCommandLine } from '../../src/qemu/native.ts';

/** The daemon in-process on a sim host, for everything that must fail before (or without) a
 *  QEMU: each refusal is checked to leave the host and the state as they were. */
let dir = '';
let daemon: Daemon;
const PF = 'pci_0000_06_00_0';

const domainXml = (name: string, vf: string, extra = ''): string =>
  vfDomainXml(name, Number(vf), { extraDevices: extra });

const code = (c: string, pattern?: RegExp) => (e: unknown) =>
  e instanceof PassthruError && e.code === c && (pattern === undefined || pattern.test(e.message));

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'passthru-daemon-'));
  await createSimHost(join(dir, 'host'), 'intel-x710-2port');
  daemon = await openDaemon({ host: `sim:${join(dir, 'host')}`, stateDir: join(dir, 'state'), log: silentLogger() });
});
after(async () => {
  await daemon.close();
  await rm(dir, { recursive: true, force: true });
});

const table = () => daemon.handle({ kind: 'nodedevVfTable', name: PF });

test('malformed or invalid XML is refused with its line, and nothing is stored', async () => {
  await assert.rejects(
    daemon.handle({ kind: 'define', xml: '<domain>\n<name>x</name>\n<devices>' }),
    code('XML_SYNTAX'),
  );
  await assert.rejects(
    daemon.handle({ kind: 'define', xml: domainXml('bad', '0').replace("slot='0x02'", "slot='0x20'") }),
    (e: unknown) => code('XML_INVALID', /slot/)(e) && (e as PassthruError).line === 10,
  );
  await assert.rejects(
    daemon.handle({ kind: 'define', xml: domainXml('bad', '0').replace('52:54:00:aa:00:01', '52:54:00:aa:00') }),
    code('XML_INVALID', /MAC/),
  );
  assert.deepEqual(await daemon.handle({ kind: 'list' }), []);
  assert.deepEqual(await readdir(join(dir, 'state', 'domains')), []);
});

test('redefine keeps the uuid; a different uuid for the name, or a uuid of another name, is refused', async () => {
  const first = await daemon.handle({ kind: 'define', xml: domainXml('redef', '1') });
  assert.match(first.uuid, /^[0-9a-f-]{36}$/);
  const again = await daemon.handle({ kind: 'define', xml: domainXml('redef', '1') });
  assert.equal(again.uuid, first.uuid);
  const other = domainXml('redef', '1').replace(
    '<name>redef</name>',
    '<name>redef</name><uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid>',
  );
  await assert.rejects(
    daemon.handle({ kind: 'define', xml: other }),
    code('DOMAIN_EXISTS', /already exists with uuid/),
  );
  const twin = domainXml('twin', '1').replace('<name>twin</name>', `<name>twin</name><uuid>${first.uuid}</uuid>`);
  await assert.rejects(daemon.handle({ kind: 'define', xml: twin }), code('DOMAIN_EXISTS', /redef already has uuid/));
  await daemon.handle({ kind: 'undefine', name: 'redef' });
  assert.deepEqual(await daemon.handle({ kind: 'list' }), []);
});

test('an unknown domain is NO_DOMAIN, naming it', async () => {
  await assert.rejects(daemon.handle({ kind: 'start', name: 'ghost' }), code('NO_DOMAIN', /'ghost'/));
  await assert.rejects(daemon.handle({ kind: 'dumpxml', name: 'ghost', inactive: false }), code('NO_DOMAIN'));
});

test('a device the host does not have: NO_DEVICE at start, host unchanged', async () => {
  const before0 = await table();
  await daemon.handle({ kind: 'define', xml: domainXml('nodev', '0').replace("bus='0x06'", "bus='0x44'") });
  await assert.rejects(daemon.handle({ kind: 'start', name: 'nodev' }), code('NO_DEVICE', /0000:44:02.0/));
  assert.deepEqual(await table(), before0);
  await daemon.handle({ kind: 'undefine', name: 'nodev' });
});

test('QEMU that cannot start: the VF prepared for it is given back exactly', async () => {
  const before0 = await table();
  await daemon.handle({ kind: 'define', xml: domainXml('noqemu', '3') });
  await assert.rejects(daemon.handle({ kind: 'start', name: 'noqemu' }), code('QEMU_FAILED'));
  assert.deepEqual(await table(), before0);
  const [summary] = await daemon.handle({ kind: 'list' });
  assert.equal(summary?.state, 'shutoff');
  await daemon.handle({ kind: 'undefine', name: 'noqemu' });
});

test('what passthrud cannot run yet is refused at start, naming it, before the host is touched', async () => {
  const before0 = await table();
  const eth = "\n    <interface type='ethernet'><model type='virtio'/></interface>";
  await daemon.handle({ kind: 'define', xml: domainXml('bridged', '2', eth) });
  await assert.rejects(
    daemon.handle({ kind: 'start', name: 'bridged' }),
    code('CONFIG_UNSUPPORTED', /<interface type='ethernet'> \(line \d+\) cannot be run/),
  );
  assert.deepEqual(await table(), before0);
  await daemon.handle({ kind: 'undefine', name: 'bridged' });
});

test("define writes libvirt's fill-in (addresses, implicit devices) and keeps it across a restart", async () => {
  const xml = read('domain/xml2argv', 'hostdev-pci-multifunction.xml');
  await daemon.handle({ kind: 'define', xml });
  const dumped = (await daemon.handle({ kind: 'dumpxml', name: 'delete', inactive: true })).xml;
  assert.equal(dumped, formatDomainXml(completeDefinition(readDomainXml(xml, 'x')), { inactive: true }));
  assert.match(dumped, /<hostdev[\s\S]*?<address type='pci' domain='0x0000' bus='0x00' slot='0x02' function='0x0'\/>/);
  assert.equal(await readFile(join(dir, 'state', 'domains', 'delete.xml'), 'utf8'), dumped);
  // Defining what dumpxml gave back changes nothing (the addresses are the user's now).
  await daemon.handle({ kind: 'define', xml: dumped });
  const again = await openDaemon({
    host: `sim:${join(dir, 'host')}`,
    stateDir: join(dir, 'state'),
    log: silentLogger(),
  });
  try {
    assert.equal((await again.handle({ kind: 'dumpxml', name: 'delete', inactive: true })).xml, dumped);
  } finally {
    await again.close();
  }
  await daemon.handle({ kind: 'undefine', name: 'delete' });
});

test('domxml-to-native: the daemon answers with the command line --offline computes (one function)', async () => {
  const xml = read('domain/xml2argv', 'hostdev-vfio.xml');
  const r = await daemon.handle({ kind: 'domxmlToNative', xml });
  const offline = nativeCommandLine(readDomainXml(xml, 'x'), {
    stateDir: join(dir, 'state'),
    accel: chooseAccel(await readProcModules()),
    emulator: 'qemu-system-x86_64',
  });
  assert.deepEqual([r.binary, ...r.argv], offline);
  assert.ok(r.argv.some((a) => a.includes('"driver":"vfio-pci","host":"0000:06:12.1"')));
});

test('the API maps codes to statuses and refuses bad bodies', async () => {
  const app = buildApi(daemon);
  const noBody = await app.inject({ method: 'POST', url: '/domains', payload: {} });
  assert.equal(noBody.statusCode, 400);
  assert.equal(noBody.json<{ code: string }>().code, 'INVALID_ARG');
  const ghost = await app.inject({ method: 'POST', url: '/domains/ghost/start' });
  assert.equal(ghost.statusCode, 404);
  assert.match(ghost.json<{ message: string }>().message, /ghost/);
  const syntax = await app.inject({ method: 'POST', url: '/domains', payload: { xml: '<domain>' } });
  assert.equal(syntax.statusCode, 400);
  assert.equal(syntax.json<{ code: string }>().code, 'XML_SYNTAX');
  const nowhere = await app.inject({ method: 'GET', url: '/nope' });
  assert.equal(nowhere.statusCode, 404);
  const badCap = await app.inject({ method: 'GET', url: '/nodedevs?cap=usb' });
  assert.equal(badCap.statusCode, 400);
  await app.close();
});

test('events reach API clients as Server-Sent Events', async () => {
  const app = buildApi(daemon);
  const socket = join(dir, 'api.sock');
  await app.listen({ path: socket });
  try {
    const client = new Client(socket);
    const seen: DaemonEvent[] = [];
    let opened: () => void = () => undefined;
    const open = new Promise<void>((r) => (opened = r));
    const done = client.events((e) => {
      seen.push(e);
      return e.type === 'domain' && e.event === 'undefined';
    }, opened);
    await within(open, 10_000, 'the event stream opens');
    await client.post('/domains', { xml: domainXml('evt', '1') });
    await client.delete('/domains/evt');
    await within(done, 10_000, 'the defined and undefined events arrive');
    assert.deepEqual(seen, [
      { type: 'domain', event: 'defined', name: 'evt' },
      { type: 'domain', event: 'undefined', name: 'evt' },
    ]);
  } finally {
    await app.close();
  }
});

test('node devices: detach/reattach/reset, refused while a domain holds the device', async () => {
  const detached = await daemon.handle({ kind: 'nodedevDetach', name: 'pci_0000_06_02_6' });
  assert.deepEqual(detached, { device: '0000:06:02.6', driver: 'vfio-pci' });
  assert.equal((await table()).vfs[6]?.netdev, undefined);
  assert.equal((await daemon.handle({ kind: 'nodedevReset', name: '0000:06:02.6' })).device, '0000:06:02.6');
  assert.deepEqual(await daemon.handle({ kind: 'nodedevReattach', name: '0000:06:02.6' }), {
    device: '0000:06:02.6',
    driver: 'iavf',
  });
  await assert.rejects(daemon.handle({ kind: 'nodedevDetach', name: 'pci_0000_44_00_0' }), code('NO_DEVICE'));
  await assert.rejects(daemon.handle({ kind: 'nodedevDetach', name: 'bogus' }), code('NO_DEVICE', /'bogus'/));
});

test('nodedev-check names every reason: bridge, default route through the netdev; a PF with VFs is a note', async () => {
  const bridge = await daemon.handle({ kind: 'nodedevCheck', name: '0000:00:01.0' });
  assert.equal(bridge.assignable, false);
  assert.match(bridge.reasons.join('\n'), /pci-bridge: bridges are never assignable/);
  const pf = await daemon.handle({ kind: 'nodedevCheck', name: '0000:06:00.0' });
  assert.match(pf.notes.join('\n'), /PF 0000:06:00.0 has 8 VFs: unbinding its driver destroys them all/);
  // The host's default route leaves through VF 7's netdev (the sim root plays '/', /proc too).
  await mkdir(join(dir, 'host', 'proc', 'net'), { recursive: true });
  await writeFile(
    join(dir, 'host', 'proc', 'net', 'route'),
    'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\nenp6s0f0v7\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n',
  );
  const vf7 = await daemon.handle({ kind: 'nodedevCheck', name: '0000:06:02.7' });
  assert.equal(vf7.assignable, false);
  assert.deepEqual(vf7.reasons, ["PCI device 0000:06:02.7 carries the host's IPv4 default route (netdev enp6s0f0v7)"]);
  // nodedev-detach refuses it; --force (the API's force field) takes it anyway.
  await assert.rejects(
    daemon.handle({ kind: 'nodedevDetach', name: '0000:06:02.7' }),
    code('DEVICE_IN_USE', /cannot be detached from the host: it carries the host's IPv4 default route/),
  );
  const forced = await daemon.handle({ kind: 'nodedevDetach', name: '0000:06:02.7', force: true });
  assert.deepEqual(forced, { device: '0000:06:02.7', driver: 'vfio-pci' });
  await daemon.handle({ kind: 'nodedevReattach', name: '0000:06:02.7' });
  const vf4 = await daemon.handle({ kind: 'nodedevCheck', name: '0000:06:02.4' });
  assert.deepEqual([vf4.assignable, vf4.reasons], [true, []]);
});

test('nodedev-sriov: through 0 to the new count, range checked', async () => {
  const r = await daemon.handle({ kind: 'nodedevSriov', name: 'enp6s0f1', numVfs: 3 });
  assert.deepEqual([r.before, r.after], [8, 3]);
  assert.equal((await daemon.handle({ kind: 'nodedevVfTable', name: 'enp6s0f1' })).vfs.length, 3);
  await assert.rejects(
    daemon.handle({ kind: 'nodedevSriov', name: 'enp6s0f1', numVfs: 65 }),
    code('INVALID_ARG', /0 to 64/),
  );
  await daemon.handle({ kind: 'nodedevSriov', name: 'enp6s0f1', numVfs: 8 });
});

// Once parked: under load no event came, because the daemon's nodedev-sriov (the test above)
// replied before its watcher had read the 8 VFs, and the change below came within the debounce,
// so both reads showed 0 VFs. The daemon now reads its own change before replying (sync).
test('changes made by anyone else on the host reach API clients as nodedev events', async () => {
  const seen: DaemonEvent[] = [];
  let resolve: () => void = () => undefined;
  const all = new Promise<void>((r) => (resolve = r));
  const unsubscribe = daemon.events.subscribe((_id, e) => {
    seen.push(e);
    if (seen.filter((x) => x.type === 'nodedev' && x.event === 'deleted').length === 8) resolve();
  });
  // Another process's view of the same host: its own SimKernel over the same tree.
  const other = await openSimHost(join(dir, 'host'));
  await other.writeSysfs('/sys/bus/pci/devices/0000:06:00.1/sriov_numvfs', '0');
  await within(all, 20_000, () => `8 VF deleted events (seen: ${JSON.stringify(seen)})`);
  unsubscribe();
  const nodedev = seen.filter((e) => e.type === 'nodedev');
  assert.deepEqual(
    nodedev.filter((e) => e.event === 'deleted').map((e) => e.name),
    Array.from({ length: 8 }, (_, i) => `pci_0000_06_0a_${i}`),
  );
  assert.ok(
    nodedev.some((e) => e.event === 'updated' && e.name === 'pci_0000_06_00_1' && e.fields?.includes('numVfs')),
    JSON.stringify(nodedev),
  );
  await other.writeSysfs('/sys/bus/pci/devices/0000:06:00.1/sriov_numvfs', '8');
});
