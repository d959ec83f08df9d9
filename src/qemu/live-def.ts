import type { DomainDef } from '../conf/domain/types.ts';
import { type AddressOptions, assignAddresses } from './addresses.ts';
import { assignAliases } from './aliases.ts';
import { assignNodeIndexes, withScsiControllers } from './disk-props.ts';

/**
 * What libvirt does to a definition at start: aliases for every device, the q35 controller set
 * and a guest PCI address for every device without one. The result is the live definition
 * (what `dumpxml` shows while the domain runs) and the only input buildArgv accepts. Pure, and
 * running it on its own output changes nothing.
 */
export function prepareLiveDef(def: DomainDef, opts: AddressOptions = {}): DomainDef {
  // Aliases first so that address errors name devices by them; the second pass names the
  // controllers the planner added.
  return assignNodeIndexes(assignAliases(assignAddresses(assignAliases(withScsiControllers(def)), opts)));
}
