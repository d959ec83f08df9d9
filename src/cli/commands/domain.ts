import { readFile } from 'node:fs/promises';
import { PassthruError } from '../../conf/error.ts';
import type { DomainSummary, XmlBody } from '../../protocol/wire.ts';
import type { CommandModule } from '../context.ts';
import { table } from '../render.ts';

const enc = encodeURIComponent;

export async function readInput(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new PassthruError(
      'INVALID_ARG',
      `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    );
  }
}

export const domainCommands: CommandModule = {
  register(program, ctx) {
    program
      .command('define')
      .description('define (or redefine) a domain from its XML')
      .argument('<file>', 'domain XML file')
      .action(async (file: string) => {
        const d = await ctx.client().post<DomainSummary>('/domains', { xml: await readInput(file) });
        ctx.out(`Domain '${d.name}' defined from ${file}\n`);
      });
    program
      .command('undefine')
      .description('remove a domain definition')
      .argument('<name>')
      .action(async (name: string) => {
        await ctx.client().delete(`/domains/${enc(name)}`);
        ctx.out(`Domain '${name}' has been undefined\n`);
      });
    program
      .command('start')
      .description('start a defined domain')
      .argument('<name>')
      .action(async (name: string) => {
        await ctx.client().post(`/domains/${enc(name)}/start`);
        ctx.out(`Domain '${name}' started\n`);
      });
    program
      .command('destroy')
      .description('stop a running domain at once and give its host devices back')
      .argument('<name>')
      .action(async (name: string) => {
        await ctx.client().post(`/domains/${enc(name)}/destroy`);
        ctx.out(`Domain '${name}' destroyed\n`);
      });
    program
      .command('list')
      .description('list domains (running ones unless --all)')
      .option('--all', 'also the ones that are not running')
      .option('--json', 'JSON output')
      .action(async (o: { all?: boolean; json?: boolean }) => {
        const all = await ctx.client().get<DomainSummary[]>('/domains');
        const shown = o.all ? all : all.filter((d) => d.state !== 'shutoff');
        if (o.json) ctx.out(`${JSON.stringify(shown, null, 2)}\n`);
        else
          ctx.out(
            table(
              ['Id', 'Name', 'State'],
              shown.map((d) => [d.pid ? String(d.pid) : '-', d.name, stateWord(d)]),
            ),
          );
      });
    program
      .command('dumpxml')
      .description("print a domain's XML (live while it runs)")
      .argument('<name>')
      .option('--inactive', 'the persistent definition, not the live one')
      .action(async (name: string, o: { inactive?: boolean }) => {
        const r = await ctx.client().get<XmlBody>(`/domains/${enc(name)}/xml${o.inactive ? '?inactive=1' : ''}`);
        ctx.out(r.xml);
      });
  },
};

function stateWord(d: DomainSummary): string {
  return d.state === 'shutoff' ? 'shut off' : d.state;
}
