import { parseCpuset } from '../conf/cpuset.ts';
import type { Sysfs } from './types.ts';

const NODES = '/sys/devices/system/node';

/** Host CPU -> NUMA node, from /sys/devices/system/node/nodeN/cpulist. Empty when the host (or
 *  the sim profile) shows no node directories: nothing is then preferred. */
export async function readCpuNodes(sysfs: Sysfs): Promise<Map<number, number>> {
  const map = new Map<number, number>();
  for (const entry of await sysfs.list(NODES)) {
    const m = /^node(\d+)$/.exec(entry);
    if (!m) continue;
    const list = await sysfs.read(`${NODES}/${entry}/cpulist`);
    if (list === undefined || list.trim() === '') continue;
    for (const cpu of parseCpuset(list.trim())) map.set(cpu, Number(m[1]));
  }
  return map;
}
