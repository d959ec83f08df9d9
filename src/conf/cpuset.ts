import { PassthruError } from './error.ts';
import type { XmlElement } from './xml/tree.ts';

/** libvirt's cpuset syntax: `0-3,8,^2` (ranges, singles, exclusions). */
export function parseCpuset(text: string, el?: XmlElement): number[] {
  const set = new Set<number>();
  const excluded = new Set<number>();
  for (const raw of text.split(',')) {
    const part = raw.trim();
    const m = /^(\^)?(\d+)(?:-(\d+))?$/.exec(part);
    if (!m?.[2]) {
      throw new PassthruError('XML_INVALID', `'${text}' is not a CPU or node set (as 0-3,8,^2)`, {
        ...(el ? { line: el.line } : {}),
      });
    }
    const lo = Number(m[2]);
    const hi = m[3] === undefined ? lo : Number(m[3]);
    for (let i = lo; i <= hi; i++) (m[1] ? excluded : set).add(i);
  }
  return [...set].filter((n) => !excluded.has(n)).sort((a, b) => a - b);
}
