import type { DomainDef } from '../conf/domain/types.ts';
import { readDomainXml } from '../conf/domain/read.ts';
import { formatDomainXml } from '../conf/domain/format.ts';
import { newUuid } from '../conf/uuid.ts';

/** Reads a domain document (parse -> postParse -> validate); a definition without a uuid gets
 *  one, as libvirt gives it at define. */
export function parseDefinition(xml: string, source: string): DomainDef {
  const def = readDomainXml(xml, source);
  return def.uuid ? def : { ...def, uuid: newUuid() };
}

export function formatDefinition(def: DomainDef, inactive: boolean): string {
  return formatDomainXml(def, inactive ? { inactive: true } : { live: true });
}
