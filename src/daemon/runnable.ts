import type { DomainDef } from '../conf/domain/types.ts';
import { PassthruError } from '../conf/error.ts';

/**
 * The configuration layer reads all of libvirt's vocabulary in our scope; passthrud runs a part
 * of it so far. A domain that asks for more is refused at start, naming the device, rather than
 * started without it (libvirt's users lose settings to silent drops; ours must not).
 */
export function checkRunnable(def: DomainDef): void {
  const refuse = (what: string, line: number | undefined, hint?: string): never => {
    throw new PassthruError(
      'CONFIG_UNSUPPORTED',
      `domain ${def.name}: ${what}${line === undefined ? '' : ` (line ${line})`} cannot be run by passthrud yet`,
      hint === undefined ? {} : { hint },
    );
  };
  for (const n of def.devices.interfaces) {
    if (n.type !== 'hostdev' && n.type !== 'user')
      refuse(`<interface type='${n.type}'>`, n.line, 'hostdev and user interfaces run today');
    if (n.virtualport)
      refuse(`<virtualport type='${n.virtualport.type ?? ''}'> on <interface type='${n.type}'>`, n.line);
  }
  for (const h of def.devices.hostdevs) {
    if (h.netdevs?.length) refuse('<netdev port=...> on a <hostdev>', h.line);
  }
  for (const p of def.devices.poolHostdevs ?? []) refuse(`<hostdev> from device pool '${p.pool}'`, p.line);
  for (const d of [...(def.devices.disks ?? []), ...(def.devices.others ?? [])]) {
    // <memballoon model='none'/> asks for nothing, which is what runs.
    if (d.kind === 'memballoon' && d.xml.attrs.get('model') === 'none') continue;
    refuse(`<${d.kind}>`, d.xml.line);
  }
}
