import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readDomainXml } from '../../src/conf/domain/read.ts';
import type { DomainDef } from '../../src/conf/domain/types.ts';
import { PassthruError } from '../../src/conf/error.ts';
import { parseMac } from '../../src/conf/mac.ts';
import { formatPciAddress } from '../../src/conf/pci-address.ts';
import type { DevicePresentation } from '../../src/host/types.ts';
import type { Accel } from '../../src/qemu/accel.ts';
import { buildArgv } from '../../src/qemu/argv.ts';
import { hostdevRequests } from '../../src/hostdev/request.ts';
import { prepareLiveDef } from '../../src/qemu/live-def.ts';
import { vfioPresentations } from '../../src/qemu/native.ts';

/**
 * Golden files, as libvirt's qemuxmlconftest: test/qemu/data/<case>.xml -> <case>.args (one
 * option and its value per line). PASSTHRU_REGENERATE=1 rewrites the .args files; review the
 * diff before committing them.
 */
const DATA = join(dirname(fileURLToPath(import.meta.url)), 'data');
const REGENERATE = process.env['PASSTHRU_REGENERATE'] === '1';

type Backend = 'vfio' | 'emulated-nic';

const CASES: readonly { name: string; backend: Backend; accel?: Accel }[] = [
  { name: 'hostdev-emulated-nic', backend: 'emulated-nic' },
  { name: 'hostdev-vfio', backend: 'vfio', accel: 'kvm' },
  { name: 'teaming', backend: 'vfio' },
  { name: 'user-net-pc', backend: 'vfio' },
  { name: 'explicit-addresses', backend: 'vfio' },
  { name: 'viommu-vfio', backend: 'vfio' },
];

/** What the host backend would present for each hostdev of the live definition: the linux one's
 *  vfio-pci, or the sim's e1000e carrying the interface's MAC (a fixed one for a bare hostdev). */
function presentations(live: DomainDef, backend: Backend): Map<string, DevicePresentation> {
  const vfio = vfioPresentations(live);
  if (backend === 'vfio') return vfio;
  const macs = new Map(live.devices.interfaces.map((i) => [i.alias, i.mac]));
  const emulated = (alias: string): DevicePresentation => ({
    kind: 'emulated-nic',
    model: 'e1000e',
    mac: macs.get(alias) ?? parseMac('52:54:00:ff:00:00'),
  });
  return new Map([...vfio.keys()].map((alias) => [alias, emulated(alias)]));
}

function argvFor(name: string, backend: Backend, accel: Accel = 'tcg'): string[] {
  const def = readDomainXml(readFileSync(join(DATA, `${name}.xml`), 'utf8'), `${name}.xml`);
  const live = prepareLiveDef(def);
  return buildArgv(live, {
    accel,
    qmpSocket: `/run/passthru/qemu/${def.name}.qmp`,
    consoleLog: `/var/log/passthru/${def.name}.console`,
    pidfile: `/run/passthru/qemu/${def.name}.pid`,
    hostDevices: presentations(live, backend),
  });
}

/** libvirt's .args layout: each option with its value on one line, shell-quoted when needed. */
export function formatArgs(argv: readonly string[]): string {
  const lines: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const opt = argv[i] ?? '';
    const next = argv[i + 1];
    if (next !== undefined && !next.startsWith('-')) {
      lines.push(`${opt} ${quote(next)}`);
      i++;
    } else lines.push(opt);
  }
  return `${lines.join(' \\\n')}\n`;
}

function quote(w: string): string {
  return /^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replaceAll("'", `'\\''`)}'`;
}

for (const c of CASES) {
  test(`argv golden: ${c.name}`, () => {
    const actual = formatArgs(argvFor(c.name, c.backend, c.accel));
    const file = join(DATA, `${c.name}.args`);
    if (REGENERATE) writeFileSync(file, actual);
    assert.equal(actual, readFileSync(file, 'utf8'), `${c.name}.args differs (PASSTHRU_REGENERATE=1 rewrites it)`);
  });
}

test('argv: the emulated NIC carries the MAC the host programmed, and no option ROM', () => {
  const argv = argvFor('hostdev-emulated-nic', 'emulated-nic');
  const devices = argv.flatMap((a, i) => (argv[i - 1] === '-device' ? [JSON.parse(a) as Record<string, unknown>] : []));
  const nic = devices.find((d) => d['id'] === 'hostdev0');
  assert.deepEqual(nic, {
    driver: 'e1000e',
    id: 'hostdev0',
    mac: '52:54:00:00:00:01',
    bus: 'pci.1',
    addr: '0x0',
    romfile: '',
  });
});

test('argv: a paused start (-S) unless asked otherwise, and no device without a presentation', () => {
  const def = prepareLiveDef(readDomainXml(readFileSync(join(DATA, 'hostdev-vfio.xml'), 'utf8')));
  const ctx = {
    accel: 'tcg' as const,
    qmpSocket: '/q',
    consoleLog: '/c',
    pidfile: '/p',
    hostDevices: presentations(def, 'vfio'),
  };
  assert.ok(buildArgv(def, ctx).includes('-S'));
  assert.ok(!buildArgv(def, { ...ctx, startPaused: false }).includes('-S'));
  assert.throws(
    () => buildArgv(def, { ...ctx, hostDevices: new Map() }),
    (e: unknown) =>
      e instanceof PassthruError && e.code === 'INTERNAL' && e.message.includes('hostdev0 (host 0000:06:12.5)'),
  );
});

test("argv: a serial file keeps the definition's path, commas doubled, and append='on'", () => {
  const xml = readFileSync(join(DATA, 'hostdev-vfio.xml'), 'utf8').replace(
    '</devices>',
    "  <serial type='file'><source path='/var/log/a,b.log' append='on'/></serial>\n  </devices>",
  );
  const live = prepareLiveDef(readDomainXml(xml));
  const argv = buildArgv(live, {
    accel: 'tcg',
    qmpSocket: '/q',
    consoleLog: '/c',
    pidfile: '/p',
    hostDevices: presentations(live, 'vfio'),
  });
  const chardevs = argv.filter((_, i) => argv[i - 1] === '-chardev');
  assert.ok(chardevs.includes('file,id=charserial0,path=/var/log/a,,b.log,append=on'), chardevs.join('\n'));
});

test('vfio presentations: every hostdev, hostdev interface and allocated network VF, by alias', () => {
  const xml = readFileSync(join(DATA, 'hostdev-vfio.xml'), 'utf8').replace(
    '</devices>',
    `  <interface type='network'>
      <mac address='52:54:00:00:00:07'/>
      <source network='pool'/>
      <actual type='hostdev' managed='yes'>
        <source><address type='pci' domain='0x0000' bus='0x06' slot='0x10' function='0x7'/></source>
      </actual>
    </interface>
    <interface type='network'>
      <mac address='52:54:00:00:00:08'/>
      <source network='pool'/>
    </interface>
  </devices>`,
  );
  const live = prepareLiveDef(readDomainXml(xml));
  const hosts = [...vfioPresentations(live)].map(([alias, p]) => [
    alias,
    p.kind === 'vfio' ? formatPciAddress(p.host) : p.kind,
  ]);
  // conf's one list: interfaces first, as libvirt parses them into its hostdev list first; the
  // unassigned function (hostdev3) gets no QEMU device, so no presentation...
  assert.deepEqual(hosts, [
    ['hostdev0', '0000:06:10.7'],
    ['hostdev1', '0000:06:12.5'],
    ['hostdev2', '0000:06:12.6'],
  ]);
  // ...but the device requests take it from the host all the same.
  assert.deepEqual(
    hostdevRequests(live).map((r) => [r.alias, formatPciAddress(r.address), r.assigned]),
    [...hosts.map(([a, h]) => [a, h, true]), ['hostdev3', '0001:01:00.0', false]],
  );
  // The command line (without the interface its network has not given a VF yet) has them too.
  const allocated = {
    ...live,
    devices: { ...live.devices, interfaces: live.devices.interfaces.filter((n) => n.type !== 'network' || n.actual) },
  };
  const argv = buildArgv(allocated, {
    accel: 'tcg',
    qmpSocket: 'q',
    consoleLog: 'c',
    pidfile: 'p',
    hostDevices: vfioPresentations(live),
  });
  for (const [alias, host] of hosts) {
    assert.ok(
      argv.some((a) => a.includes(`"id":"${alias}"`) && a.includes(`"host":"${host ?? '?'}"`)),
      alias,
    );
  }
  assert.ok(!argv.some((a) => a.includes('hostdev3')), 'the unassigned function has no -device');
});
