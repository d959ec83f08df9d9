import type { DomainDef } from '../conf/domain/types.ts';
import { parseCpuset } from '../conf/cpuset.ts';
import { childElements } from '../conf/xml/tree.ts';

/**
 * The host NUMA nodes a guest is pinned to, which its pool devices should sit on: the nodes of
 * `<numatune><memory nodeset>` when given (memory is what DMA touches), otherwise the nodes of
 * the host CPUs its vCPUs are pinned to (`<vcpu cpuset>`, `<cputune><vcpupin cpuset>`), mapped
 * through the host's CPU -> node table. Empty when the guest is not pinned: no preference.
 */
export function guestNumaNodes(def: DomainDef, cpuNode: ReadonlyMap<number, number>): Set<number> {
  const memory = def.numatune && childElements(def.numatune).find((c) => c.name === 'memory');
  const nodeset = memory?.attrs.get('nodeset');
  if (nodeset !== undefined) return new Set(parseCpuset(nodeset, memory));
  const cpus = new Set<number>();
  if (def.vcpuCpuset !== undefined) for (const c of parseCpuset(def.vcpuCpuset)) cpus.add(c);
  for (const pin of def.cputune ? childElements(def.cputune) : []) {
    const set = pin.name === 'vcpupin' ? pin.attrs.get('cpuset') : undefined;
    if (set !== undefined) for (const c of parseCpuset(set, pin)) cpus.add(c);
  }
  const nodes = new Set<number>();
  for (const c of cpus) {
    const n = cpuNode.get(c);
    if (n !== undefined) nodes.add(n);
  }
  return nodes;
}
