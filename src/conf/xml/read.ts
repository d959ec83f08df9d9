import { PassthruError } from '../error.ts';
import { childElements, textOf, type XmlElement } from './tree.ts';

/** Helpers for the grammar step of every parser. Each error names the element and its line. */

/** A definition's readonly type, while a parser fills it in field by field. */
export type Mutable<T> = { -readonly [K in keyof T]: T[K] };

export function where(el: XmlElement): string {
  return `<${el.name}> at line ${el.line}`;
}

export function invalid(el: XmlElement, message: string, hint?: string): PassthruError {
  return new PassthruError('XML_INVALID', `${where(el)}: ${message}`, {
    line: el.line,
    column: el.column,
    ...(hint === undefined ? {} : { hint }),
  });
}

/** libvirt silently drops what it does not know and its users lose settings that way; we refuse. */
export function rejectUnknown(el: XmlElement, attrs: readonly string[], children: readonly string[]): void {
  for (const name of el.attrs.keys()) {
    if (!attrs.includes(name)) {
      throw invalid(el, `attribute '${name}' is not supported here`, supported('attributes', attrs));
    }
  }
  for (const c of childElements(el)) {
    if (!children.includes(c.name)) {
      throw invalid(c, `element <${c.name}> is not supported inside <${el.name}>`, supported('elements', children));
    }
  }
}

function supported(what: string, names: readonly string[]): string {
  return names.length === 0 ? `no ${what} are supported here` : `supported ${what}: ${names.join(', ')}`;
}

export function attr(el: XmlElement, name: string): string | undefined {
  return el.attrs.get(name);
}

export function requireAttr(el: XmlElement, name: string): string {
  const v = el.attrs.get(name);
  if (v === undefined) throw invalid(el, `missing attribute '${name}'`);
  return v;
}

/** The one attribute of an element that takes nothing else (`<mtu size='1500'/>`), required. */
export function onlyAttr(el: XmlElement, name: string): string {
  rejectUnknown(el, [name], []);
  return requireAttr(el, name);
}

export function child(el: XmlElement, name: string): XmlElement | undefined {
  return childElements(el).find((c) => c.name === name);
}

export function children(el: XmlElement, name: string): XmlElement[] {
  return childElements(el).filter((c) => c.name === name);
}

/** A child that may appear at most once. */
export function single(el: XmlElement, name: string): XmlElement | undefined {
  const [first, second] = children(el, name);
  if (second) throw invalid(second, `<${name}> may appear only once inside <${el.name}>`);
  return first;
}

/** A child that must appear exactly once. */
export function requireChild(el: XmlElement, name: string): XmlElement {
  const c = single(el, name);
  if (!c) throw invalid(el, `missing <${name}> element`);
  return c;
}

/** The text of an element that takes nothing else: an attribute or child element on it would
 *  otherwise be dropped without a word. */
export function leafText(el: XmlElement): string {
  rejectUnknown(el, [], []);
  return textOf(el);
}

export function childText(el: XmlElement, name: string): string | undefined {
  const c = single(el, name);
  return c === undefined ? undefined : leafText(c);
}

export function oneOf<T extends string>(el: XmlElement, name: string, value: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw invalid(el, `${name}='${value}' is not one of ${allowed.map((a) => `'${a}'`).join(', ')}`);
}

export function yesNo(el: XmlElement, name: string): boolean | undefined {
  const v = attr(el, name);
  return v === undefined ? undefined : oneOf(el, name, v, ['yes', 'no']) === 'yes';
}

/** Runs a value-type parser and re-throws its error located at the element. */
export function located<T>(el: XmlElement, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof PassthruError && err.line === undefined) {
      throw new PassthruError(err.code === 'INVALID_ARG' ? 'XML_INVALID' : err.code, `${where(el)}: ${err.message}`, {
        line: el.line,
        column: el.column,
        ...(err.hint === undefined ? {} : { hint: err.hint }),
      });
    }
    throw err;
  }
}

export function parseUnsigned(el: XmlElement, name: string, value: string): number {
  const n = /^(0x[0-9a-fA-F]+|\d+)$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n)) throw invalid(el, `${name}='${value}' is not a non-negative integer`);
  return n;
}
