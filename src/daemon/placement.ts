import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { hostDevices } from '../conf/domain/hostdevs.ts';
import { readTuning, type Tuning, vcpuCpus } from '../conf/domain/tuning.ts';
import type { DomainDef } from '../conf/domain/types.ts';
import { PassthruError } from '../conf/error.ts';
import { formatPciAddress } from '../conf/pci-address.ts';
import { type XmlElement } from '../conf/xml/tree.ts';
import {
  freeHugepages,
  hugetlbfsMount,
  type MachineResources,
  processThreads,
  readMachine,
} from '../host/resources.ts';
import type { Logger } from '../lib/logger.ts';
import type { Accel } from '../qemu/accel.ts';
import type { MemoryBackendPlan } from '../qemu/memory-props.ts';
import type { QemuProcess } from '../qemu/process.ts';
import type { HostViews } from './host-views.ts';

/** Where a domain's vCPUs, emulator threads and memory go on the host. */
export interface PlacementPlan {
  /** vCPU index -> host CPUs; vCPUs not named run anywhere. */
  readonly vcpus: ReadonlyMap<number, readonly number[]>;
  readonly emulator?: readonly number[];
  readonly memory?: MemoryBackendPlan;
}

export interface PlacementDeps {
  readonly hostViews: HostViews;
  readonly log: Logger;
  /** The machine QEMU runs on (tests give their own). */
  readonly machine?: () => Promise<MachineResources>;
}

const POLICY = { strict: 'bind', preferred: 'preferred', interleave: 'interleave' } as const;

const list = (xs: readonly number[]): string => xs.join(',');

/**
 * Refuses, before anything is taken from the host, what the host cannot give: more memory or
 * vCPUs than it has, CPUs or NUMA nodes it does not have, hugepages of a size it has no pool of,
 * or too few of them free.
 */
export async function checkResources(def: DomainDef, deps: PlacementDeps): Promise<void> {
  const t = readTuning(def);
  const m = await (deps.machine ?? readMachine)();
  const who = `domain ${def.name}`;
  if (def.memoryKiB > m.memTotalKiB) {
    throw new PassthruError(
      'INVALID_ARG',
      `${who} asks for ${Math.ceil(def.memoryKiB / 1024)} MiB of memory; the host has ${Math.floor(m.memTotalKiB / 1024)} MiB`,
    );
  }
  if (def.vcpus > m.onlineCpus.length) {
    throw new PassthruError(
      'INVALID_ARG',
      `${who} asks for ${def.vcpus} vCPUs; the host has ${m.onlineCpus.length} CPUs online`,
      {
        hint: 'give it at most as many vCPUs as the host has CPUs',
      },
    );
  }
  const online = new Set(m.onlineCpus);
  const sets: [string, readonly number[] | undefined][] = [
    ['<vcpu cpuset>', t.vcpuCpuset],
    ['<emulatorpin cpuset>', t.emulatorpin],
    ...[...t.vcpupin].map(([v, cpus]): [string, readonly number[]] => [`<vcpupin vcpu='${v}' cpuset>`, cpus]),
  ];
  for (const [what, cpus] of sets) {
    const missing = (cpus ?? []).filter((c) => !online.has(c));
    if (missing.length > 0)
      throw new PassthruError(
        'INVALID_ARG',
        `${who}: ${what} names CPU ${list(missing)}, which the host does not have (online: ${list(m.onlineCpus)})`,
      );
  }
  if (t.memory?.placement === 'static') {
    const nodes = new Set((await deps.hostViews.cpuNodes()).values());
    const missing = t.memory.nodes.filter((n) => !nodes.has(n) && !(nodes.size === 0 && n === 0));
    if (missing.length > 0)
      throw new PassthruError(
        'INVALID_ARG',
        `${who}: <numatune> nodeset names NUMA node ${list(missing)}, which the host does not have (nodes: ${list([...nodes].sort()) || '0'})`,
      );
  }
  if (t.hugepages) await checkHugepages(def, t.hugepages.pageKiB ?? m.defaultHugepageKiB, who);
}

async function checkHugepages(def: DomainDef, pageKiB: number | undefined, who: string): Promise<void> {
  const free = pageKiB === undefined ? undefined : await freeHugepages(pageKiB);
  if (pageKiB === undefined || free === undefined) {
    throw new PassthruError('INVALID_ARG', `${who}: the host has no ${pageKiB ?? '?'} KiB hugepages`, {
      hint: 'ls /sys/kernel/mm/hugepages shows the sizes it has',
    });
  }
  const need = Math.ceil(def.memoryKiB / pageKiB);
  if (free < need) {
    throw new PassthruError(
      'HOST_FAILED',
      `${who} needs ${need} free ${pageKiB} KiB hugepages for its ${Math.ceil(def.memoryKiB / 1024)} MiB; the host has ${free} free`,
      { errno: 'ENOMEM', hint: `reserve more: echo N > /sys/kernel/mm/hugepages/hugepages-${pageKiB}kB/nr_hugepages` },
    );
  }
}

/** The plan, after the host devices are known (placement='device' follows them). */
export async function planPlacement(live: DomainDef, deps: PlacementDeps): Promise<PlacementPlan> {
  const t = readTuning(live);
  const m = await (deps.machine ?? readMachine)();
  const cpuNode = await deps.hostViews.cpuNodes();
  let deviceCpus: number[] | undefined;
  let deviceNodes: number[] | undefined;
  if (t.memory?.placement === 'device') {
    const nodes = new Set<number>();
    for (const h of hostDevices(live)) {
      const n = await deps.hostViews.deviceNode(formatPciAddress(h.source.address));
      if (n !== undefined) nodes.add(n);
    }
    deviceNodes = [...nodes].sort((a, b) => a - b);
    deviceCpus = [...cpuNode]
      .filter(([, n]) => nodes.has(n))
      .map(([c]) => c)
      .sort((a, b) => a - b);
    if (deviceNodes.length === 0 || deviceCpus.length === 0) {
      deps.log.warn(
        { domain: live.name },
        "placement='device': the host devices have no NUMA node with CPUs; not placed",
      );
      deviceNodes = undefined;
      deviceCpus = undefined;
    }
  }
  const vcpus = new Map<number, readonly number[]>();
  for (let v = 0; v < live.vcpus; v++) {
    const cpus = vcpuCpus(t, v) ?? deviceCpus;
    if (cpus) vcpus.set(v, cpus);
  }
  const emulator = t.emulatorpin ?? deviceCpus;
  const memory = await memoryPlan(t, deviceNodes, deps, m);
  return { vcpus, ...(emulator ? { emulator } : {}), ...(memory ? { memory } : {}) };
}

async function memoryPlan(
  t: Tuning,
  deviceNodes: number[] | undefined,
  deps: PlacementDeps,
  m: MachineResources,
): Promise<MemoryBackendPlan | undefined> {
  const nodes = t.memory?.placement === 'static' ? t.memory.nodes : deviceNodes;
  if (!t.hugepages && nodes === undefined) return undefined;
  let source: MemoryBackendPlan['source'] = { kind: 'ram' };
  if (t.hugepages) {
    const pageKiB = t.hugepages.pageKiB ?? m.defaultHugepageKiB ?? 2048;
    const mount = await hugetlbfsMount(pageKiB, m.defaultHugepageKiB);
    source = mount ? { kind: 'file', memPath: mount } : { kind: 'memfd-hugetlb', pageBytes: pageKiB * 1024 };
  }
  if (nodes === undefined || !t.memory) return { source };
  const hostNodes = await deps.hostViews.memoryNodes(nodes);
  return hostNodes.length === 0 ? { source } : { source, hostNodes, policy: POLICY[t.memory.mode] };
}

/**
 * Pins QEMU's threads, before the guest runs: each vCPU thread (QMP query-cpus-fast gives their
 * thread ids) to its CPUs, every other thread of the process to the emulator's CPUs (threads
 * QEMU starts later inherit the main thread's mask).
 */
export async function applyPinning(plan: PlacementPlan, proc: QemuProcess): Promise<void> {
  if (plan.vcpus.size === 0 && !plan.emulator) return;
  const cpus = (await proc.qmp.execute('query-cpus-fast')) as { 'cpu-index': number; 'thread-id': number }[];
  const vcpuThreads = new Set(cpus.map((c) => c['thread-id']));
  if (plan.emulator) {
    for (const tid of await processThreads(proc.pid)) if (!vcpuThreads.has(tid)) await setAffinity(tid, plan.emulator);
  }
  for (const c of cpus) {
    const set = plan.vcpus.get(c['cpu-index']);
    if (set) await setAffinity(c['thread-id'], set);
  }
}

/** sched_setaffinity of one thread, through util-linux taskset (Node has no binding for it). */
async function setAffinity(tid: number, cpus: readonly number[]): Promise<void> {
  try {
    await promisify(execFile)('taskset', ['-p', '-c', list(cpus), String(tid)]);
  } catch (err) {
    throw new PassthruError(
      'HOST_FAILED',
      `cannot pin thread ${tid} of QEMU to CPUs ${list(cpus)}: ${(err as Error).message}`,
    );
  }
}

/** The live `<cpu>` under TCG: QEMU got `-cpu max` whatever the mode, and the live XML says so
 *  in libvirt's words (mode='maximum'), keeping the topology. */
export function liveCpu(live: DomainDef, accel: Accel): DomainDef {
  if (accel === 'kvm' || !live.cpu) return live;
  const attrs = new Map(live.cpu.attrs);
  attrs.set('mode', 'maximum');
  attrs.delete('match');
  const children = live.cpu.children.filter((c) => c.kind !== 'element' || c.name === 'topology' || c.name === 'numa');
  const cpu: XmlElement = { ...live.cpu, attrs, children };
  return { ...live, cpu };
}
