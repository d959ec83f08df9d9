/* eslint-disable @typescript-eslint/no-deprecated -- libxml2 2.14 plans to drop RELAX NG, but
   libvirt's schemas are RELAX NG and issue 3 asks for exactly this check. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RelaxNGValidator, XmlDocument } from 'libxml2-wasm';
import { xmlRegisterFsInputProviders } from 'libxml2-wasm/lib/nodejs.mjs';

/** libvirt 9.0.0's own test data, read in place (never copied into the project). */
export const LIBVIRT = join(import.meta.dirname, '../../../../shared/conformance/libvirt-9.0.0');

export function files(dir: string, suffix: string): string[] {
  return readdirSync(join(LIBVIRT, dir))
    .filter((f) => f.endsWith(suffix))
    .sort();
}

export function read(dir: string, file: string): string {
  return readFileSync(join(LIBVIRT, dir, file), 'utf8');
}

let registered = false;
const validators = new Map<string, RelaxNGValidator>();

/** A RELAX NG validator for a libvirt schema, or for one of our overlays (src/conf/rng), whose
 *  `href='libvirt:NAME'` includes are pointed at libvirt's schema folder here. */
export function rngValidator(schema: string): RelaxNGValidator {
  let v = validators.get(schema);
  if (v) return v;
  if (!registered) registered = xmlRegisterFsInputProviders();
  const libvirtDir = join(LIBVIRT, 'schemas');
  const path = schema.startsWith('passthru-')
    ? join(import.meta.dirname, '../../../src/conf/rng', schema)
    : join(libvirtDir, schema);
  const text = readFileSync(path, 'utf8').replaceAll('href="libvirt:', `href="${libvirtDir}/`);
  v = RelaxNGValidator.fromDoc(XmlDocument.fromString(text, { url: path }));
  validators.set(schema, v);
  return v;
}

/** Returns the validation error message, or undefined when the document is valid. */
export function rngProblem(schema: string, xml: string): string | undefined {
  const doc = XmlDocument.fromString(xml);
  try {
    rngValidator(schema).validate(doc);
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  } finally {
    doc.dispose();
  }
}

/** A copy without the named keys (for comparisons that ignore bookkeeping such as `line`). */
export function omit<T extends object>(obj: T, ...keys: string[]): Partial<T> {
  return Object.fromEntries(Object.entries(obj).filter(([k]) => !keys.includes(k))) as Partial<T>;
}
