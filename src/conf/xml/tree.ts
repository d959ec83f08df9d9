/** The XML tree passthru reads and writes: elements with ordered attributes, text, and the
 *  1-based line:column of each element's start tag so that every error can point at it. */
export interface XmlElement {
  readonly kind: 'element';
  readonly name: string;
  readonly attrs: ReadonlyMap<string, string>;
  readonly children: readonly XmlNode[];
  readonly line: number;
  readonly column: number;
}

export interface XmlText {
  readonly kind: 'text';
  readonly text: string;
}

export type XmlNode = XmlElement | XmlText;

/** Element children only, in document order. */
export function childElements(el: XmlElement): XmlElement[] {
  return el.children.filter((c): c is XmlElement => c.kind === 'element');
}

/** The concatenated text directly inside an element, trimmed. */
export function textOf(el: XmlElement): string {
  return el.children
    .filter((c): c is XmlText => c.kind === 'text')
    .map((c) => c.text)
    .join('')
    .trim();
}

/** What the writer takes: attributes whose value is undefined are left out, so formatters can
 *  pass optional fields straight through. */
export interface OutElement {
  readonly name: string;
  readonly attrs?: readonly (readonly [string, string | number | undefined])[];
  readonly children?: readonly (OutElement | undefined | false)[];
  readonly text?: string;
}

export function out(
  name: string,
  attrs: readonly (readonly [string, string | number | undefined])[] = [],
  children: readonly (OutElement | undefined | false)[] = [],
): OutElement {
  return { name, attrs, children };
}

export function outText(
  name: string,
  text: string,
  attrs: readonly (readonly [string, string | number | undefined])[] = [],
): OutElement {
  return { name, attrs, text };
}
