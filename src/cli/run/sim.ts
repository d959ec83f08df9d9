import { PassthruError } from '../../conf/error.ts';
import { createSimHost } from '../../host/sim/create.ts';
import { listProfiles } from '../../host/sim/profile.ts';
import type { Invocation } from '../spec.ts';

export async function create({ ctx, args: [dir = ''], opts }: Invocation): Promise<void> {
  const profile = String(opts['profile']);
  if (!listProfiles().includes(profile)) {
    throw new PassthruError('INVALID_ARG', `unknown sim profile '${profile}'`, {
      hint: `profiles: ${listProfiles().join(', ')}`,
    });
  }
  const host = await createSimHost(dir, profile);
  ctx.out(`Simulated host '${host.profile}' created in ${host.root} (${host.devices} PCI functions)\n`);
}

export function profiles({ ctx, opts }: Invocation): Promise<void> {
  ctx.out(opts['json'] ? `${JSON.stringify(listProfiles())}\n` : listProfiles().join('\n').concat('\n'));
  return Promise.resolve();
}
