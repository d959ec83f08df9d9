import { PassthruError } from '../conf/error.ts';
import { type Member, memberOrder } from './members.ts';

export interface PoolRef {
  readonly kind: 'network' | 'devicepool';
  readonly name: string;
}

export interface AllocationRequest {
  /** Host NUMA nodes of the guest's pinned memory or vCPUs (guestNumaNodes); empty = any. */
  readonly numaNodes: ReadonlySet<number>;
  /** A member must carry every one of these tags. */
  readonly requireTags?: readonly string[];
}

/** Why each member is not free right now, for the pool's info and the "none available" hint. */
export interface PoolFacts {
  /** The domain holding the member (a pool allocation, or any lease of the device manager). */
  holder(bdf: string): string | undefined;
  quarantined(bdf: string): boolean;
  /** Health check result (health.ts), undefined when healthy. */
  problem(m: Member): string | undefined;
}

export function poolLabel(ref: PoolRef): string {
  return ref.kind === 'network' ? `network '${ref.name}'` : `device pool '${ref.name}'`;
}

/**
 * Picks the member a request gets, deterministically:
 * 1. only free members: not held, not quarantined, healthy, carrying the required tags;
 * 2. members on one of the guest's NUMA nodes first (when the guest is pinned);
 * 3. then the lowest PF (by PCI address) and the lowest VF index on it; a device that is not a
 *    VF by its own PCI address.
 * The same pool state and request always give the same member, so a failed start retried gives
 * the same VF, and tests can name it.
 */
export function chooseMember(
  ref: PoolRef,
  members: readonly Member[],
  facts: PoolFacts,
  request: AllocationRequest,
  /** The members are in allocation order already (the pools keep them so). */
  ordered = false,
): Member {
  const tags = request.requireTags ?? [];
  const near = (m: Member): boolean => m.numaNode !== undefined && request.numaNodes.has(m.numaNode);
  const usable = (m: Member): boolean =>
    facts.holder(m.bdf) === undefined &&
    !facts.quarantined(m.bdf) &&
    tags.every((t) => m.tags.includes(t)) &&
    facts.problem(m) === undefined;
  // Walk in order and stop at the first usable member: on a pool of thousands the checks of
  // the others (health above all) would cost more than the choice.
  const inOrder = ordered ? members : [...members].sort(memberOrder);
  const best =
    (request.numaNodes.size > 0 ? inOrder.find((m) => near(m) && usable(m)) : undefined) ?? inOrder.find(usable);
  if (best) return best;
  throw noneAvailable(ref, members, facts, tags);
}

/** libvirt's words, and a hint that counts why each member was out. */
function noneAvailable(
  ref: PoolRef,
  members: readonly Member[],
  facts: PoolFacts,
  tags: readonly string[],
): PassthruError {
  let held = 0;
  let quarantined = 0;
  let untagged = 0;
  const unhealthy: string[] = [];
  for (const m of members) {
    if (facts.holder(m.bdf) !== undefined) held++;
    else if (facts.quarantined(m.bdf)) quarantined++;
    else if (!tags.every((t) => m.tags.includes(t))) untagged++;
    else {
      const problem = facts.problem(m);
      if (problem !== undefined) unhealthy.push(problem);
    }
  }
  const counts = [
    `${members.length} member${members.length === 1 ? '' : 's'}`,
    `${held} in use`,
    quarantined > 0 && `${quarantined} quarantined (release with 'passthru nodedev-release ADDR')`,
    untagged > 0 && `${untagged} without the tags ${tags.join(',')}`,
    unhealthy.length > 0 && `${unhealthy.length} failing the health check (${unhealthy[0] ?? ''})`,
  ].filter(Boolean);
  const what = ref.kind === 'network' ? 'interfaces' : 'devices';
  return new PassthruError(
    'DEVICE_IN_USE',
    `${poolLabel(ref)} requires exclusive access to ${what}, but none are available`,
    {
      hint: counts.join(', '),
    },
  );
}
