import { formatDomainXml } from '../../src/conf/domain/format.ts';
import { readDomainXml } from '../../src/conf/domain/read.ts';
import { type Figure, samples } from '../lib/figure.ts';

/**
 * Parse + format throughput of the domain configuration layer for a ~5 KB live domain (root
 * ports, VFs with MAC/VLAN, a teaming pair, a user NIC, serial/console, aliases and guest
 * addresses): readDomainXml (parse -> postParse -> validate) then formatDomainXml.
 */
export function fiveKbDomain(): string {
  const ports = Array.from({ length: 8 }, (_, i) => {
    const n = i + 1;
    return `    <controller type='pci' index='${n}' model='pcie-root-port'>
      <model name='pcie-root-port'/>
      <target chassis='${n}' port='0x${(0x10 + i).toString(16)}'/>
      <alias name='pci.${n}'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x02' function='0x${i.toString(16)}'${i === 0 ? " multifunction='on'" : ''}/>
    </controller>`;
  }).join('\n');
  const vfs = Array.from({ length: 5 }, (_, i) => {
    const fn = i + 1;
    return `    <interface type='hostdev' managed='yes'>
      <mac address='52:54:00:00:01:0${fn}'/>
      <driver name='vfio'/>
      <source>
        <address type='pci' domain='0x0000' bus='0x06' slot='0x02' function='0x${fn}'/>
      </source>
      <vlan>
        <tag id='${40 + i}'/>
      </vlan>
      <alias name='hostdev${i}'/>
      <address type='pci' domain='0x0000' bus='0x0${fn}' slot='0x00' function='0x0'/>
    </interface>`;
  }).join('\n');
  return `<domain type='kvm'>
  <name>bench</name>
  <uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid>
  <memory unit='KiB'>1048576</memory>
  <currentMemory unit='KiB'>1048576</currentMemory>
  <vcpu placement='static'>2</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>/var/cache/passthru/guest/vmlinuz</kernel>
    <initrd>/var/cache/passthru/guest/initrd.img</initrd>
    <cmdline>console=ttyS0 quiet</cmdline>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <controller type='pci' index='0' model='pcie-root'>
      <alias name='pcie.0'/>
    </controller>
${ports}
${vfs}
    <interface type='user'>
      <mac address='52:54:00:00:00:02'/>
      <model type='virtio'/>
      <teaming type='persistent'/>
      <alias name='ua-standby'/>
      <address type='pci' domain='0x0000' bus='0x06' slot='0x00' function='0x0'/>
    </interface>
    <interface type='hostdev' managed='yes'>
      <mac address='52:54:00:00:00:02'/>
      <source>
        <address type='pci' domain='0x0000' bus='0x06' slot='0x03' function='0x0'/>
      </source>
      <teaming type='transient' persistent='ua-standby'/>
      <alias name='hostdev5'/>
      <address type='pci' domain='0x0000' bus='0x07' slot='0x00' function='0x0'/>
    </interface>
    <serial type='file'>
      <source path='/var/log/passthru/bench.log'/>
      <target type='isa-serial' port='0'>
        <model name='isa-serial'/>
      </target>
      <alias name='serial0'/>
    </serial>
    <console type='file'>
      <source path='/var/log/passthru/bench.log'/>
      <target type='serial' port='0'/>
      <alias name='serial0'/>
    </console>
  </devices>
</domain>
`;
}

/** Documents per second over one window of `seconds`, after a warm-up of the JIT. */
function docsPerSecond(doc: string, seconds: number): number {
  let n = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  while (performance.now() < end) {
    for (let i = 0; i < 50; i++) formatDomainXml(readDomainXml(doc));
    n += 50;
  }
  return (n * 1000) / (performance.now() - start);
}

export default [
  {
    id: 'conf.parse-format',
    title: 'domain XML parse+format (5 KB live domain)',
    measure: (ctx) => {
      const doc = fiveKbDomain();
      if (formatDomainXml(readDomainXml(doc)) !== doc) throw new Error('bench document is not canonical');
      for (let i = 0; i < 500; i++) formatDomainXml(readDomainXml(doc));
      const windows = Array.from({ length: ctx.rounds(7) }, () => docsPerSecond(doc, 0.5));
      ctx.note(`${doc.length} bytes per document; 0.5 s windows`);
      return Promise.resolve(samples('docs/s', windows, 'higher'));
    },
  },
] satisfies Figure[];
