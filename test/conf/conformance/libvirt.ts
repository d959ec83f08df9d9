/* eslint-disable @typescript-eslint/no-deprecated -- libxml2 2.14 plans to drop RELAX NG, but
   libvirt's schemas are RELAX NG and issue 3 asks for exactly this check. */
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { RelaxNGValidator, XmlDocument, xmlRegisterInputProvider } from 'libxml2-wasm';
import { xmlRegisterFsInputProviders } from 'libxml2-wasm/lib/nodejs.mjs';

/** libvirt 9.0.0's own test data, kept in the project (origin and licence: its README.md). */
export const LIBVIRT = join(import.meta.dirname, '../../data/libvirt-9.0.0');

export function files(dir: string, suffix: string): string[] {
  return readdirSync(join(LIBVIRT, dir))
    .filter((f) => f.endsWith(suffix))
    .sort();
}

export function read(dir: string, file: string): string {
  return readFileSync(join(LIBVIRT, dir, file), 'utf8');
}

const SCHEMAS = join(LIBVIRT, 'schemas');
const OVERLAYS = join(import.meta.dirname, '../../../src/conf/rng');
let registered = false;
const validators = new Map<string, RelaxNGValidator>();

/** Our overlays (src/conf/rng) include libvirt's schemas as 'libvirt:NAME'; libvirt's schemas
 *  include each other by bare name. Both are served from libvirt's folder here. */
function libvirtSchemaPath(filename: string): string | undefined {
  const name =
    filename
      .replace(/^libvirt:/, '')
      .split('/')
      .pop() ?? '';
  const path = join(SCHEMAS, name);
  return filename.startsWith('libvirt:') || (!existsSync(filename) && existsSync(path)) ? path : undefined;
}

function register(): void {
  if (registered) return;
  registered = true;
  xmlRegisterInputProvider({
    match: (f) => libvirtSchemaPath(f) !== undefined,
    open: (f) => {
      const p = libvirtSchemaPath(f);
      return p === undefined ? undefined : openSync(p, 'r');
    },
    read: (fd, buf) => readSync(fd, buf, 0, buf.byteLength, null),
    close: (fd) => {
      closeSync(fd);
      return true;
    },
  });
  xmlRegisterFsInputProviders();
}

/** A RELAX NG validator for a libvirt schema ('domain.rng') or one of our overlays ('passthru-domain.rng'). */
export function rngValidator(schema: string): RelaxNGValidator {
  let v = validators.get(schema);
  if (v) return v;
  register();
  const path = schema.startsWith('passthru-') ? join(OVERLAYS, schema) : join(SCHEMAS, schema);
  v = RelaxNGValidator.fromDoc(XmlDocument.fromBuffer(readFileSync(path), { url: path }));
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
