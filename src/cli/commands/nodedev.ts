import type {
  NodedevChange,
  NodedevCheck,
  NodeDeviceSummary,
  SriovChange,
  VfTable,
  XmlBody,
} from '../../protocol/wire.ts';
import { PassthruError } from '../../conf/error.ts';
import type { CommandModule } from '../context.ts';
import { table } from '../render.ts';

export const nodedevCommands: CommandModule = {
  register(program, ctx) {
    program
      .command('nodedev-list')
      .description("list the host's devices")
      .option('--cap <cap>', 'only devices with this capability: pci or net')
      .option('--json', 'JSON output')
      .action(async (o: { cap?: string; json?: boolean }) => {
        if (o.cap !== undefined && o.cap !== 'pci' && o.cap !== 'net') {
          throw new PassthruError('INVALID_ARG', `invalid --cap '${o.cap}': use pci or net`);
        }
        const list = await ctx.client().get<NodeDeviceSummary[]>(`/nodedevs${o.cap ? `?cap=${o.cap}` : ''}`);
        if (o.json) ctx.out(`${JSON.stringify(list, null, 2)}\n`);
        else ctx.out(list.map((d) => `${d.name}\n`).join(''));
      });
    program
      .command('nodedev-dumpxml')
      .description("print a device's node-device XML")
      .argument('<name>', 'e.g. pci_0000_06_10_2 or net_enp6s0f0_52_54_00_aa_bb_cc')
      .action(async (name: string) => {
        ctx.out((await ctx.client().get<XmlBody>(`/nodedevs/${encodeURIComponent(name)}/xml`)).xml);
      });
    program
      .command('nodedev-vfs')
      .description("print a PF's VF table (admin MAC, VLAN, driver of each VF)")
      .argument('<pf>', 'the PF: its node-device name, PCI address or netdev')
      .option('--json', 'JSON output')
      .action(async (pf: string, o: { json?: boolean }) => {
        const t = await ctx.client().get<VfTable>(`/nodedevs/${encodeURIComponent(pf)}/vfs`);
        ctx.out(o.json ? `${JSON.stringify(t, null, 2)}\n` : renderVfTable(t));
      });
    program
      .command('nodedev-detach')
      .description("detach a PCI device from its host driver and bind vfio-pci (for managed='no')")
      .argument('<name>', 'node-device name or PCI address')
      .option('--driver <name>', 'the vfio driver: vfio-pci or a variant driver', 'vfio-pci')
      .action(async (name: string, o: { driver: string }) => {
        const r = await ctx.client().post<NodedevChange>(`${path(name)}/detach`, { driver: o.driver });
        ctx.out(`Device ${r.device} detached (driver ${r.driver ?? 'none'})\n`);
      });
    program
      .command('nodedev-reattach')
      .description('give a detached PCI device back to its host driver')
      .argument('<name>', 'node-device name or PCI address')
      .action(async (name: string) => {
        const r = await ctx.client().post<NodedevChange>(`${path(name)}/reattach`);
        ctx.out(`Device ${r.device} re-attached (driver ${r.driver ?? 'none'})\n`);
      });
    program
      .command('nodedev-reset')
      .description('reset a PCI device (FLR, PM or bus reset, as the kernel chooses)')
      .argument('<name>', 'node-device name or PCI address')
      .action(async (name: string) => {
        const r = await ctx.client().post<NodedevChange>(`${path(name)}/reset`);
        ctx.out(`Device ${r.device} reset\n`);
      });
    program
      .command('nodedev-check')
      .description('can this PCI device be given to a guest, and if not, exactly why')
      .argument('<name>', 'node-device name or PCI address')
      .option('--json', 'JSON output')
      .action(async (name: string, o: { json?: boolean }) => {
        const r = await ctx.client().get<NodedevCheck>(`${path(name)}/check`);
        ctx.out(o.json ? `${JSON.stringify(r, null, 2)}\n` : renderCheck(r));
      });
    program
      .command('nodedev-sriov')
      .description("set a PF's VF count safely (through 0, refused while a VF is in use, waits for the VFs)")
      .argument('<pf>', 'the PF: node-device name, PCI address or netdev')
      .requiredOption('--numvfs <n>', 'how many VFs')
      .option('--autoprobe <on|off>', 'whether the host drivers take the new VFs')
      .action(async (pf: string, o: { numvfs: string; autoprobe?: string }) => {
        if (!/^\d{1,5}$/.test(o.numvfs))
          throw new PassthruError('INVALID_ARG', `invalid --numvfs '${o.numvfs}': a VF count 0..65535`);
        if (o.autoprobe !== undefined && o.autoprobe !== 'on' && o.autoprobe !== 'off') {
          throw new PassthruError('INVALID_ARG', `invalid --autoprobe '${o.autoprobe}': on or off`);
        }
        const r = await ctx.client().post<SriovChange>(`${path(pf)}/sriov`, {
          numVfs: Number(o.numvfs),
          ...(o.autoprobe === undefined ? {} : { autoprobe: o.autoprobe === 'on' }),
        });
        ctx.out(
          `PF ${r.pf}: ${r.before} -> ${r.after} VFs${r.settled ? '' : ' (some VFs had not settled when the wait ended)'}\n`,
        );
      });
  },
};

const path = (name: string): string => `/nodedevs/${encodeURIComponent(name)}`;

export function renderCheck(r: NodedevCheck): string {
  const lines = [`${r.device}: ${r.assignable ? 'assignable' : 'NOT assignable'}`];
  for (const why of r.reasons) lines.push(`  - ${why}`);
  for (const note of r.notes) lines.push(`  note: ${note}`);
  if (r.iommuGroup !== undefined) lines.push(`IOMMU group ${r.iommuGroup}:`);
  for (const m of r.members) {
    const extra = [m.bridge ? 'bridge' : '', m.heldBy ? `held by ${m.heldBy}` : ''].filter(Boolean).join('; ');
    lines.push(
      `  ${m.address}  driver ${m.driver ?? '-'}  netdevs ${m.netdevs.join(',') || '-'}${extra ? `  (${extra})` : ''}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

export function renderVfTable(t: VfTable): string {
  return `PF ${t.pf} (${t.pfNetdev})\n${table(
    ['VF', 'Address', 'Admin MAC', 'VLAN', 'Driver', 'Netdev'],
    t.vfs.map((v) => [String(v.vf), v.address, v.mac, String(v.vlan), v.driver ?? '-', v.netdev ?? '-']),
  )}`;
}
