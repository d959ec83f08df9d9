import { randomUUID } from 'node:crypto';
import { PassthruError } from './error.ts';

export type Uuid = string & { readonly __brand: 'Uuid' };

/** Accepts the dashed form and libvirt's other accepted form (32 hex digits, dashes anywhere). */
export function parseUuid(text: string): Uuid {
  const hex = text.trim().replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) {
    throw new PassthruError('INVALID_ARG', `invalid UUID '${text}'`, {
      hint: "write 32 hex digits, for example 'c7a5fdbd-edaf-9455-926a-d65c16db1809'",
    });
  }
  const h = hex.toLowerCase();
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}` as Uuid;
}

/** Randomness is injected where tests need it exact. */
export function newUuid(random: () => string = randomUUID): Uuid {
  return parseUuid(random());
}
