import { domainXmlProblems } from './domain/read.ts';
import { PassthruError } from './error.ts';
import { networkPortXmlProblems } from './network/port.ts';
import { networkXmlProblems } from './network/read.ts';
import { parseNodeDevice } from './nodedev/parse.ts';
import { devicePoolXmlProblems } from './pool/read.ts';
import { problemsOf } from './problems.ts';
import { parseXml } from './xml/reader.ts';
import type { XmlElement } from './xml/tree.ts';

export type XmlKind = 'domain' | 'network' | 'networkport' | 'devicepool' | 'device';

/**
 * Every problem of any passthru XML document, told apart by its root element, for
 * `passthru validate FILE` (offline, no daemon). An empty list means valid. Never throws for bad
 * input: a syntax error is returned as the one problem.
 */
export function validateAnyXml(text: string, source = 'XML document'): { kind?: XmlKind; problems: PassthruError[] } {
  let root: XmlElement;
  try {
    root = parseXml(text, source);
  } catch (err) {
    if (err instanceof PassthruError) return { problems: [err] };
    throw err;
  }
  const rootName = root.name;
  switch (rootName) {
    case 'domain':
      return { kind: rootName, problems: domainXmlProblems(text, source) };
    case 'network':
      return { kind: rootName, problems: networkXmlProblems(text, source) };
    case 'networkport':
      return { kind: rootName, problems: networkPortXmlProblems(text, source) };
    case 'devicepool':
      return { kind: rootName, problems: devicePoolXmlProblems(text, source) };
    case 'device':
      return {
        kind: rootName,
        problems: problemsOf(() => {
          parseNodeDevice(text, source);
          return [];
        }),
      };
    default:
      return {
        problems: [
          new PassthruError(
            'XML_INVALID',
            `${source}: <${rootName}> is not a document passthru knows (domain, network, networkport, devicepool, device)`,
            { line: root.line, column: root.column },
          ),
        ],
      };
  }
}
