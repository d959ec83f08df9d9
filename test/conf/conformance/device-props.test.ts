import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readDomainXml } from '../../../src/conf/domain/read.ts';
import type { DomainDef } from '../../../src/conf/domain/types.ts';
import { assignAliases } from '../../../src/qemu/aliases.ts';
import { busAliases, hostdevProps, nicProps, rootPortProps } from '../../../src/qemu/device-props.ts';
import { files, read } from './libvirt.ts';

/**
 * The -device properties of what the conf layer reads, against libvirt's .args files, compared as
 * property sets (old `driver,k=v` and JSON forms alike). The domain is libvirt's own expected
 * output (xml2xml-out), so every device carries libvirt's guest address: this isolates the
 * reading of the XML and the property builder (src/qemu/device-props.ts) from the address
 * planner, which test/qemu/conformance.test.ts checks together with them.
 */
const DRIVERS = new Set(['vfio-pci', 'virtio-net-pci', 'pcie-root-port', 'ioh3420', 'pci-bridge']);
type Props = Map<string, string>;

const norm = (v: unknown): string => (v === true ? 'on' : v === false ? 'off' : String(v));

function parseDevice(arg: string): Props {
  if (arg.startsWith('{')) {
    return new Map(Object.entries(JSON.parse(arg) as Record<string, unknown>).map(([k, v]) => [k, norm(v)]));
  }
  // key=value form: ',,' is a literal comma.
  const parts = arg
    .replaceAll(',,', '\u0000')
    .split(',')
    .map((p) => p.replaceAll('\u0000', ','));
  const [driver = '', ...rest] = parts;
  return new Map([
    ['driver', driver],
    ...rest.map((p): [string, string] => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)]),
  ]);
}

function theirDevices(args: string): Props[] {
  const tokens = [...args.replaceAll('\\\n', ' ').matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2] ?? '');
  return tokens
    .filter((_, i) => tokens[i - 1] === '-device')
    .map(parseDevice)
    .filter((p) => DRIVERS.has(p.get('driver') ?? ''));
}

function ourDevices(def: DomainDef): Props[] {
  const live = assignAliases(def);
  const buses = busAliases(live);
  const toMap = (p: Readonly<Record<string, unknown>>): Props =>
    new Map(Object.entries(p).map(([k, v]) => [k, norm(v)]));
  const out: Props[] = [];
  for (const c of live.devices.controllers) {
    if (c.model === 'pcie-root-port') out.push(toMap(rootPortProps(c, buses)));
  }
  for (const i of live.devices.interfaces) {
    if (i.type === 'hostdev') out.push(toMap(hostdevProps(i, { kind: 'vfio', host: i.source.address }, buses)));
    else if (i.model === 'virtio') out.push(toMap(nicProps(i, buses)));
  }
  for (const h of live.devices.hostdevs) {
    if (h.assigned === false || h.guestAddress?.type === 'unassigned') continue;
    out.push(toMap(hostdevProps(h, { kind: 'vfio', host: h.source.address }, buses)));
  }
  return out;
}

const byId = (list: Props[]): Map<string, Props> => new Map(list.map((p) => [p.get('id') ?? '', p]));

test("-device properties equal libvirt's .args as property sets", (t) => {
  let compared = 0;
  let devices = 0;
  const outs = files('domain/xml2xml-out', '.xml');
  for (const args of files('domain/xml2argv', '.args')) {
    const base = args.replace(/\.(x86_64-latest|x86_64-4\.2\.0)?\.?args$/, '').replace(/\.$/, '');
    if (args.includes('4.2.0')) continue; // the same case for an old QEMU; the -latest one is compared
    const out = outs.find((o) => o === `${base}.xml` || o === `${base}.x86_64-latest.xml`);
    if (out === undefined) continue;
    const theirs = byId(theirDevices(read('domain/xml2argv', args)));
    const ours = byId(ourDevices(readDomainXml(read('domain/xml2xml-out', out), out)));
    assert.deepEqual([...ours.keys()].sort(), [...theirs.keys()].sort(), `${base}: device ids`);
    for (const [id, props] of theirs) {
      assert.deepEqual(Object.fromEntries(ours.get(id) ?? []), Object.fromEntries(props), `${base}: ${id}`);
      devices++;
    }
    compared++;
  }
  t.diagnostic(`-device property sets equal libvirt's: ${devices} devices in ${compared} cases`);
  assert.ok(compared >= 15, `only ${compared} cases compared`);
});
