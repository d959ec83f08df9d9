import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { PassthruError } from '../../src/conf/error.ts';
import type { XmlBody } from '../../src/protocol/wire.ts';
import { simDaemonFixture, vfRow, vfState } from '../helpers/daemon.ts';
import { waitForScan } from './helpers/console.ts';
import { e2eGuest } from './helpers/guest.ts';
import { guestXml } from './helpers/guest-xml.ts';

/**
 * A guest with the intel vIOMMU (`<iommu model='intel'>`, interrupt remapping on a split
 * irqchip) holding a sim VF: QEMU runs it with intel-iommu before the root ports, the guest
 * kernel (with intel_iommu=on) probes its NIC behind it, and what QEMU would refuse is refused
 * before the VF is touched.
 */
const env = e2eGuest();
const skip = typeof env === 'string' ? env : false;
const fixture = simDaemonFixture('pt-viommu', 'intel-x710-2port', skip !== false);
const PF = 'pci_0000_06_00_0';
const MAC = '52:54:00:00:0e:01';
const vf = `<interface type='hostdev' managed='yes'><mac address='${MAC}'/>
      <source><address type='pci' domain='0x0000' bus='0x06' slot='0x02' function='0x3'/></source></interface>`;
const iommu = (driver: string) => `<iommu model='intel'><driver ${driver}/></iommu>`;
const features = "\n  <features><acpi/><ioapic driver='qemu'/></features>";

/** The command line of the QEMU running guest `name` (from /proc). */
async function qemuCmdline(name: string): Promise<string[]> {
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
    if (argv.includes(`guest=${name},debug-threads=on`)) return argv;
  }
  throw new Error(`no QEMU of ${name}`);
}

test('the intel vIOMMU: QEMU gets it with interrupt remapping, the guest probes its VF behind it', {
  skip,
}, async () => {
  if (typeof env === 'string') throw new Error(env);
  const { client } = fixture.current();
  const console = `${fixture.dir()}/viommu.console`;
  const g = { ...env, append: `${env.append} intel_iommu=on` };
  const xml = guestXml(g, 'viommu', `${vf}\n${iommu("intremap='on' caching_mode='on'")}`, console, features);
  await client.post('/domains', { xml });
  await client.post('/domains/viommu/start');
  const nics = await waitForScan(console, (n) => n.some((x) => x.mac === MAC));
  assert.equal(nics.find((n) => n.mac === MAC)?.driver, 'e1000e');
  const argv = await qemuCmdline('viommu');
  assert.ok(argv.includes('q35,usb=off,kernel_irqchip=split,dump-guest-core=off'), argv.join(' '));
  const devices = argv.flatMap((a, i) => (argv[i - 1] === '-device' ? [a] : []));
  assert.equal(devices[0], '{"driver":"intel-iommu","id":"iommu0","intremap":"on","caching-mode":true}');
  assert.match((await client.get<XmlBody>('/domains/viommu/xml')).xml, /<iommu model='intel'>/);
  await client.post('/domains/viommu/destroy');
});

test('a vIOMMU QEMU would refuse is refused at start, the VF untouched', { skip }, async () => {
  if (typeof env === 'string') throw new Error(env);
  const { client } = fixture.current();
  const before = vfState(await vfRow(client, PF, 3));
  const cases: [string, string, RegExp][] = [
    ['nocache', iommu("intremap='on'"), /needs its caching mode/],
    ['noioapic', iommu("intremap='on' caching_mode='on'"), /requires split I\/O APIC/],
  ];
  for (const [name, dev, message] of cases) {
    const xml = guestXml(
      env,
      name,
      `${vf}\n${dev}`,
      `${fixture.dir()}/${name}.console`,
      name === 'nocache' ? features : '',
    );
    await client.post('/domains', { xml });
    await assert.rejects(client.post(`/domains/${name}/start`), (e: unknown) => {
      return e instanceof PassthruError && e.code === 'CONFIG_UNSUPPORTED' && message.test(e.message);
    });
    assert.deepEqual(vfState(await vfRow(client, PF, 3)), before);
    await client.delete(`/domains/${name}`);
  }
});
