import { parseCpuset } from '../cpuset.ts';
import { PassthruError } from '../error.ts';
import { childElements, type XmlElement } from '../xml/tree.ts';
import type { DomainDef } from './types.ts';

/**
 * The CPU, memory and NUMA settings passthru runs, read from the elements the definition carries
 * (`<cpu>`, `<memoryBacking>`, `<cputune>`, `<numatune>`; generic.ts checks their shape). Pure.
 */
export interface Tuning {
  readonly cpuMode?: 'host-passthrough' | 'host-model' | 'custom' | 'maximum';
  readonly cpuModel?: string;
  readonly topology?: {
    readonly sockets: number;
    readonly dies: number;
    readonly cores: number;
    readonly threads: number;
  };
  /** `<memoryBacking><hugepages>`: the page size in KiB (undefined: the host's default size). */
  readonly hugepages?: { readonly pageKiB?: number };
  /** `<cputune><vcpupin>`: vCPU -> host CPUs. */
  readonly vcpupin: ReadonlyMap<number, readonly number[]>;
  /** `<vcpu cpuset>`: where vCPUs without their own pin go. */
  readonly vcpuCpuset?: readonly number[];
  readonly emulatorpin?: readonly number[];
  /** `<numatune><memory>`: a nodeset with a mode, or [beyond] placement='device'. */
  readonly memory?:
    | {
        readonly placement: 'static';
        readonly mode: 'strict' | 'preferred' | 'interleave';
        readonly nodes: readonly number[];
      }
    | { readonly placement: 'device'; readonly mode: 'strict' | 'preferred' | 'interleave' };
}

const at = (el: XmlElement): { line: number } => ({ line: el.line });

function unsupported(what: string, el: XmlElement, hint?: string): never {
  throw new PassthruError('CONFIG_UNSUPPORTED', `${what} is not supported`, {
    ...at(el),
    ...(hint === undefined ? {} : { hint }),
  });
}

/** KiB from `<page size unit>` (libvirt's default unit here is KiB). */
function pageKiB(el: XmlElement): number {
  const size = Number(el.attrs.get('size'));
  const unit = (el.attrs.get('unit') ?? 'KiB').toLowerCase();
  const scale: Record<string, number> = {
    k: 1,
    kib: 1,
    kb: 1,
    m: 1024,
    mib: 1024,
    mb: 1024,
    g: 1024 ** 2,
    gib: 1024 ** 2,
    gb: 1024 ** 2,
  };
  const f = scale[unit];
  if (!Number.isInteger(size) || size <= 0 || f === undefined)
    throw new PassthruError(
      'XML_INVALID',
      `hugepage size '${el.attrs.get('size') ?? ''}${unit}' is not a size`,
      at(el),
    );
  return size * f;
}

export function readTuning(def: DomainDef): Tuning {
  const t: {
    -readonly [K in keyof Tuning]: Tuning[K];
  } = { vcpupin: new Map() };
  const cpu = def.cpu;
  if (cpu) {
    const mode = cpu.attrs.get('mode') ?? 'custom';
    if (mode !== 'host-passthrough' && mode !== 'host-model' && mode !== 'custom' && mode !== 'maximum')
      unsupported(`<cpu mode='${mode}'>`, cpu);
    t.cpuMode = mode;
    for (const c of childElements(cpu)) {
      if (c.name === 'model')
        t.cpuModel = c.children
          .map((n) => (n.kind === 'text' ? n.text : ''))
          .join('')
          .trim();
      if (c.name === 'topology') {
        const n = (k: string, d: number): number => {
          const v = c.attrs.get(k);
          const x = v === undefined ? d : Number(v);
          if (!Number.isInteger(x) || x < 1)
            throw new PassthruError('XML_INVALID', `<topology ${k}='${v ?? ''}'> is not a count`, at(c));
          return x;
        };
        t.topology = { sockets: n('sockets', 1), dies: n('dies', 1), cores: n('cores', 1), threads: n('threads', 1) };
        const total = t.topology.sockets * t.topology.dies * t.topology.cores * t.topology.threads;
        if (total !== def.vcpus)
          throw new PassthruError(
            'XML_INVALID',
            `CPU topology (${total} vCPUs) does not match the ${def.vcpus} vCPUs of <vcpu>`,
            at(c),
          );
      }
    }
  }
  if (def.memoryBacking) {
    for (const c of childElements(def.memoryBacking)) {
      if (c.name !== 'hugepages') continue;
      const pages = childElements(c).filter((p) => p.name === 'page');
      if (pages.length > 1) unsupported('more than one <page> size', c);
      const page = pages[0];
      if (page?.attrs.has('nodeset')) unsupported('<page nodeset> (guest NUMA cells)', page);
      t.hugepages = page ? { pageKiB: pageKiB(page) } : {};
    }
  }
  if (def.vcpuCpuset !== undefined) t.vcpuCpuset = parseCpuset(def.vcpuCpuset);
  for (const c of def.cputune ? childElements(def.cputune) : []) {
    const set = c.attrs.get('cpuset');
    if (c.name === 'vcpupin' && set !== undefined) {
      const vcpu = Number(c.attrs.get('vcpu'));
      if (!Number.isInteger(vcpu) || vcpu < 0 || vcpu >= def.vcpus)
        throw new PassthruError(
          'XML_INVALID',
          `<vcpupin vcpu='${c.attrs.get('vcpu') ?? ''}'> names no vCPU of this domain (it has ${def.vcpus})`,
          at(c),
        );
      (t.vcpupin as Map<number, readonly number[]>).set(vcpu, parseCpuset(set, c));
    }
    if (c.name === 'emulatorpin' && set !== undefined) t.emulatorpin = parseCpuset(set, c);
  }
  const memory = def.numatune && childElements(def.numatune).find((c) => c.name === 'memory');
  if (memory) {
    const mode = memory.attrs.get('mode') ?? 'strict';
    if (mode !== 'strict' && mode !== 'preferred' && mode !== 'interleave')
      unsupported(`<memory mode='${mode}'>`, memory);
    const placement = memory.attrs.get('placement') ?? (memory.attrs.has('nodeset') ? 'static' : 'auto');
    const nodeset = memory.attrs.get('nodeset');
    if (placement === 'device') t.memory = { placement, mode };
    else if (placement === 'static' && nodeset !== undefined)
      t.memory = { placement, mode, nodes: parseCpuset(nodeset, memory) };
    else
      unsupported(
        `<numatune><memory placement='${placement}'>`,
        memory,
        "use a nodeset, or placement='device' (the NUMA node of the guest's host devices)",
      );
  }
  return t;
}

/** The host CPUs vCPU `vcpu` may run on: its own pin, else `<vcpu cpuset>`, else any. */
export function vcpuCpus(t: Tuning, vcpu: number): readonly number[] | undefined {
  return t.vcpupin.get(vcpu) ?? t.vcpuCpuset;
}
