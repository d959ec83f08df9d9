import type { OutElement } from './tree.ts';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', "'": '&apos;', '"': '&quot;' };

// Most values need no escaping; testing first avoids a replace() with a callback per value.
const NEEDS_ESCAPE = /[&<>'"]/;
const NEEDS_TEXT_ESCAPE = /[&<>]/;

function escapeXml(s: string): string {
  return NEEDS_ESCAPE.test(s) ? s.replace(/[&<>'"]/g, (c) => ESCAPES[c] ?? c) : s;
}

function escapeText(s: string): string {
  return NEEDS_TEXT_ESCAPE.test(s) ? s.replace(/[&<>]/g, (c) => ESCAPES[c] ?? c) : s;
}

/** Writes in libvirt's style: 2-space indent, single-quoted attributes, `<x/>` when empty,
 *  text elements on one line. Ends with a newline. */
export function formatXml(root: OutElement): string {
  const lines: string[] = [];
  write(root, 0, lines);
  return `${lines.join('\n')}\n`;
}

function write(el: OutElement, depth: number, lines: string[]): void {
  const pad = '  '.repeat(depth);
  const attrs = (el.attrs ?? [])
    .filter((a): a is readonly [string, string | number] => a[1] !== undefined)
    .map(([k, v]) => ` ${k}='${escapeXml(String(v))}'`)
    .join('');
  const kids = (el.children ?? []).filter((c): c is OutElement => c !== undefined && c !== false);
  if (el.text !== undefined && el.text !== '') {
    lines.push(`${pad}<${el.name}${attrs}>${escapeText(el.text)}</${el.name}>`);
  } else if (kids.length === 0) {
    lines.push(`${pad}<${el.name}${attrs}/>`);
  } else {
    lines.push(`${pad}<${el.name}${attrs}>`);
    for (const k of kids) write(k, depth + 1, lines);
    lines.push(`${pad}</${el.name}>`);
  }
}
