import type { NodeDeviceSummary, VfTable, XmlBody } from '../../protocol/wire.ts';
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
  },
};

export function renderVfTable(t: VfTable): string {
  return `PF ${t.pf} (${t.pfNetdev})\n${table(
    ['VF', 'Address', 'Admin MAC', 'VLAN', 'Driver', 'Netdev'],
    t.vfs.map((v) => [String(v.vf), v.address, v.mac, String(v.vlan), v.driver ?? '-', v.netdev ?? '-']),
  )}`;
}
