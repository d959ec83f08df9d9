import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseCpuset } from '../conf/cpuset.ts';

/**
 * The machine QEMU runs on, whichever backend presents the devices: its online CPUs, memory and
 * hugepages. (The sim host simulates PCI devices and NUMA placement, not the CPUs and memory
 * QEMU gets: those are this machine's.) `root` plays '/' in tests.
 */
export interface MachineResources {
  readonly onlineCpus: readonly number[];
  readonly memTotalKiB: number;
  /** The kernel's default hugepage size (Hugepagesize in /proc/meminfo). */
  readonly defaultHugepageKiB: number | undefined;
}

export async function readMachine(root = '/'): Promise<MachineResources> {
  const [online, meminfo] = await Promise.all([
    readFile(join(root, 'sys/devices/system/cpu/online'), 'utf8'),
    readFile(join(root, 'proc/meminfo'), 'utf8'),
  ]);
  const kib = (key: string): number | undefined => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(meminfo);
    return m?.[1] === undefined ? undefined : Number(m[1]);
  };
  return {
    onlineCpus: parseCpuset(online.trim()),
    memTotalKiB: kib('MemTotal') ?? 0,
    defaultHugepageKiB: kib('Hugepagesize'),
  };
}

/** Free hugepages of one size, undefined when the kernel has no pool of that size. */
export async function freeHugepages(pageKiB: number, root = '/'): Promise<number | undefined> {
  const text = await readFile(
    join(root, `sys/kernel/mm/hugepages/hugepages-${pageKiB}kB/free_hugepages`),
    'utf8',
  ).catch(() => undefined);
  return text === undefined ? undefined : Number(text.trim());
}

/** A hugetlbfs mount whose page size is `pageKiB` (from /proc/mounts), if the host has one. */
export async function hugetlbfsMount(
  pageKiB: number,
  defaultKiB: number | undefined,
  root = '/',
): Promise<string | undefined> {
  const mounts = await readFile(join(root, 'proc/mounts'), 'utf8').catch(() => '');
  for (const line of mounts.split('\n')) {
    const [, dir, type, opts] = line.split(' ');
    if (type !== 'hugetlbfs' || dir === undefined) continue;
    const m = /(?:^|,)pagesize=(\d+)([KMG])/.exec(opts ?? '');
    const size = m ? Number(m[1]) * { K: 1, M: 1024, G: 1024 ** 2 }[m[2] as 'K' | 'M' | 'G'] : defaultKiB;
    if (size === pageKiB) return dir;
  }
  return undefined;
}

/** The thread ids of a process (/proc/PID/task). */
export async function processThreads(pid: number): Promise<number[]> {
  return (await readdir(`/proc/${pid}/task`)).map(Number).filter(Number.isInteger);
}
