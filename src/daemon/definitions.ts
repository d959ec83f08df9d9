import type { DomainDef } from '../conf/domain/types.ts';
import { readDomainXml } from '../conf/domain/read.ts';
import { formatDomainXml } from '../conf/domain/format.ts';
import { newUuid } from '../conf/uuid.ts';

/** Reads a domain document (parse -> postParse -> validate). */
export function parseDefinition(xml: string, source: string): DomainDef {
  return readDomainXml(xml, source);
}

/** A definition without a uuid keeps the one its name already has, or gets a new one, as
 *  libvirt gives it at define. */
export function withUuid(def: DomainDef, existing: DomainDef | undefined): DomainDef {
  if (def.uuid) return def;
  return { ...def, uuid: existing?.uuid ?? newUuid() };
}

export function formatDefinition(def: DomainDef, inactive: boolean): string {
  return formatDomainXml(def, inactive ? { inactive: true } : { live: true });
}

/** The daemon's own record of a running domain (status XML): the live definition with each
 *  network interface as defined plus the `<actual>` device it got, so that a daemon restart
 *  knows which network gave which VF (the live form shows only the VF). */
export function formatStatus(def: DomainDef): string {
  return formatDomainXml(def, { status: true });
}
