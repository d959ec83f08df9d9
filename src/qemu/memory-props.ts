import type { PropValue } from './device-props.ts';

/**
 * How the guest's RAM is backed when the definition asks for more than anonymous memory
 * (hugepages, a NUMA policy): one memory backend object QEMU's machine uses as its RAM
 * (`-machine memory-backend=pc.ram`, libvirt's form since QEMU 5.0). The host decides the
 * source (daemon/placement.ts): a file on a hugetlbfs mount, or a hugetlb memfd when the host
 * has no mount of that page size.
 */
export interface MemoryBackendPlan {
  readonly source:
    | { readonly kind: 'ram' }
    | { readonly kind: 'file'; readonly memPath: string }
    | { readonly kind: 'memfd-hugetlb'; readonly pageBytes: number };
  /** Host NUMA nodes and the policy (`<numatune><memory mode>`: strict=bind). */
  readonly hostNodes?: readonly number[];
  readonly policy?: 'bind' | 'preferred' | 'interleave';
}

/** The id libvirt gives x86's main RAM backend (QEMU's default-ram-id for pc and q35). */
export const RAM_BACKEND_ID = 'pc.ram';

/** The backend's `-object` properties, in libvirt's order (qemuBuildMemoryBackendProps). */
export function memoryBackendProps(plan: MemoryBackendPlan, memoryKiB: number): Record<string, PropValue | number[]> {
  const p: Record<string, PropValue | number[]> = {};
  switch (plan.source.kind) {
    case 'ram':
      Object.assign(p, { 'qom-type': 'memory-backend-ram', id: RAM_BACKEND_ID });
      break;
    case 'file':
      Object.assign(p, {
        'qom-type': 'memory-backend-file',
        id: RAM_BACKEND_ID,
        'mem-path': plan.source.memPath,
        // Keeps the RAM block's name 'pc.ram', as without a backend, so migration matches.
        'x-use-canonical-path-for-ramblock-id': false,
        prealloc: true,
      });
      break;
    case 'memfd-hugetlb':
      Object.assign(p, {
        'qom-type': 'memory-backend-memfd',
        id: RAM_BACKEND_ID,
        hugetlb: true,
        hugetlbsize: plan.source.pageBytes,
        prealloc: true,
      });
      break;
  }
  p['size'] = memoryKiB * 1024;
  if (plan.hostNodes !== undefined) p['host-nodes'] = [...plan.hostNodes];
  if (plan.policy !== undefined) p['policy'] = plan.policy;
  return p;
}
