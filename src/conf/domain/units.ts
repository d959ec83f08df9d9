import { PassthruError } from '../error.ts';

/** libvirt's memory units (virScaleInteger): the SI ones are powers of 1000, the rest of 1024;
 *  no unit means KiB. */
const SCALE: Record<string, number> = {
  b: 1,
  bytes: 1,
  KB: 1e3,
  k: 1024,
  KiB: 1024,
  MB: 1e6,
  M: 1024 ** 2,
  MiB: 1024 ** 2,
  GB: 1e9,
  G: 1024 ** 3,
  GiB: 1024 ** 3,
  TB: 1e12,
  T: 1024 ** 4,
  TiB: 1024 ** 4,
};

const MEMORY_UNITS = Object.keys(SCALE);

/** Converts an amount in a unit to KiB, rounding bytes up as libvirt does. Throws INVALID_ARG. */
export function toKiB(amount: string, unit = 'KiB'): number {
  const scale = SCALE[unit];
  if (scale === undefined) {
    throw new PassthruError('INVALID_ARG', `unknown memory unit '${unit}'`, {
      hint: `use one of ${MEMORY_UNITS.join(', ')}`,
    });
  }
  if (!/^\d+$/.test(amount.trim()))
    throw new PassthruError('INVALID_ARG', `memory '${amount}' is not a non-negative integer`);
  const bytes = BigInt(amount.trim()) * BigInt(scale);
  const kib = (bytes + 1023n) / 1024n;
  // libvirt keeps memory in unsigned long long KiB; beyond 2^53 we could not represent it exactly.
  if (kib > BigInt(Number.MAX_SAFE_INTEGER))
    throw new PassthruError('INVALID_ARG', `memory '${amount}${unit}' is too large`);
  return Number(kib);
}
