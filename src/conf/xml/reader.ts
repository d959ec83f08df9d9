import { SaxesParser } from 'saxes';
import { PassthruError } from '../error.ts';
import type { XmlElement, XmlNode } from './tree.ts';

interface Building {
  name: string;
  attrs: Map<string, string>;
  children: XmlNode[];
  line: number;
  column: number;
}

/** Thrown (never built anew, so without a stack-trace cost) to abort saxes at its first error. */
const STOP = new Error('stop parsing');

/** Parses a document into a tree. Every failure is XML_SYNTAX with the line and column. */
export function parseXml(text: string, source = 'XML document'): XmlElement {
  const parser = new SaxesParser({ position: true });
  const stack: Building[] = [];
  let root: XmlElement | undefined;
  let failure: PassthruError | undefined;

  const fail = (message: string): void => {
    failure ??= new PassthruError('XML_SYNTAX', `${source}:${parser.line}:${parser.column}: ${message}`, {
      line: parser.line,
      column: parser.column,
    });
  };

  parser.on('error', (err) => {
    // saxes prefixes its own "line:col: "; we give ours.
    fail(err.message.replace(/^\d+:\d+: /, ''));
    // Stop at the first error: saxes would go on and build an Error for every later one, which
    // made damaged documents many times slower to reject than good ones to read.
    throw STOP;
  });
  parser.on('opentagstart', (tag) => {
    // A start tag begins at the '<' before the name; saxes reports the position after the name.
    stack.push({
      name: tag.name,
      attrs: new Map(),
      children: [],
      line: parser.line,
      column: Math.max(1, parser.column - tag.name.length - 1),
    });
  });
  parser.on('attribute', (a) => {
    stack.at(-1)?.attrs.set(a.name, a.value);
  });
  parser.on('text', (t) => {
    stack.at(-1)?.children.push({ kind: 'text', text: t });
  });
  parser.on('cdata', (t) => {
    stack.at(-1)?.children.push({ kind: 'text', text: t });
  });
  parser.on('closetag', () => {
    const b = stack.pop();
    if (b === undefined) return;
    const el: XmlElement = { kind: 'element', ...b };
    const parent = stack.at(-1);
    if (parent) parent.children.push(el);
    else root = el;
  });
  try {
    parser.write(text).close();
  } catch (err) {
    if (!failure && err !== STOP) fail(err instanceof Error ? err.message : String(err));
  }
  if (failure) throw failure;
  if (!root) throw new PassthruError('XML_SYNTAX', `${source}: no root element`);
  return root;
}
