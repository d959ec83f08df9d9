import { isHostdevMode, type NetworkDef } from './types.ts';

/** Defaults as libvirt fills them: a hostdev pool is unmanaged unless it says so (libvirt writes
 *  managed='no' then), and the macvtap modes name their first pool netdev in `<forward dev>`. */
export function postParseNetwork(def: NetworkDef): NetworkDef {
  const f = def.forward;
  if (!f) return def;
  if (isHostdevMode(f.mode)) return f.managed === undefined ? { ...def, forward: { ...f, managed: false } } : def;
  const first = f.interfaces[0]?.dev;
  return f.dev === undefined && first !== undefined ? { ...def, forward: { ...f, dev: first } } : def;
}
