import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readDomainXml } from '../../../src/conf/domain/read.ts';
import type { DomainDef } from '../../../src/conf/domain/types.ts';
import { type ArgvContext, buildArgv } from '../../../src/qemu/argv.ts';
import { prepareLiveDef } from '../../../src/qemu/live-def.ts';

/** libvirt's xml2argv cases copied into the repository (their ORIGIN.md says from where). */
export const XML2ARGV_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../data/libvirt-qemuxml2argv');

/** A case's `.args` file as shell words (quotes removed, line continuations joined). */
export function libvirtArgs(name: string): string[] {
  const joined = readFileSync(join(XML2ARGV_DIR, `${name}.x86_64-latest.args`), 'utf8').replaceAll('\\\n', ' ');
  return [...joined.matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2] ?? '');
}

export function libvirtCaseDef(name: string): DomainDef {
  return readDomainXml(readFileSync(join(XML2ARGV_DIR, `${name}.xml`), 'utf8'), `${name}.xml`);
}

/** passthru's argv for a definition, with placeholder paths and no host devices. */
export function ourArgs(def: DomainDef, extra: Partial<ArgvContext> = {}): string[] {
  return buildArgv(prepareLiveDef(def), {
    accel: 'tcg',
    qmpSocket: '/q',
    consoleLog: '/c',
    pidfile: '/p',
    hostDevices: new Map(),
    ...extra,
  });
}

/** The value of every occurrence of option `opt`. */
export const valuesOf = (tokens: readonly string[], opt: string): string[] =>
  tokens.filter((_, i) => tokens[i - 1] === opt);
