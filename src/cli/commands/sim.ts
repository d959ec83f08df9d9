import { createSimHost } from '../../host/sim/create.ts';
import { listProfiles } from '../../host/sim/profile.ts';
import { PassthruError } from '../../conf/error.ts';
import type { CommandModule } from '../context.ts';

export const simCommands: CommandModule = {
  register(program, ctx) {
    const sim = program.command('sim').description('simulated SR-IOV hosts (no hardware needed)');
    sim
      .command('create')
      .description('write a sysfs-shaped tree of a simulated host, for passthrud --host sim:DIR')
      .argument('<dir>', 'a new or empty directory')
      .option('--profile <name>', 'topology profile', 'intel-x710-2port')
      .action(async (dir: string, o: { profile: string }) => {
        if (!listProfiles().includes(o.profile)) {
          throw new PassthruError('INVALID_ARG', `unknown sim profile '${o.profile}'`, {
            hint: `profiles: ${listProfiles().join(', ')}`,
          });
        }
        const host = await createSimHost(dir, o.profile);
        ctx.out(`Simulated host '${host.profile}' created in ${host.root} (${host.devices} PCI functions)\n`);
      });
    sim
      .command('profiles')
      .description('list the built-in topology profiles')
      .action(() => {
        ctx.out(
          listProfiles()
            .map((p) => `${p}\n`)
            .join(''),
        );
      });
  },
};
