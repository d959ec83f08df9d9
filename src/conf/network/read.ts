import type { PassthruError } from '../error.ts';
import { problemsOf } from '../problems.ts';
import { parseNetworkXml } from './parse.ts';
import { postParseNetwork } from './postparse.ts';
import type { NetworkDef } from './types.ts';
import { networkProblems, validateNetwork } from './validate.ts';

/** parse -> postParse -> validate for a `<network>` document. */
export function readNetworkXml(text: string, source?: string): NetworkDef {
  return validateNetwork(postParseNetwork(parseNetworkXml(text, source)));
}

export function networkXmlProblems(text: string, source?: string): PassthruError[] {
  return problemsOf(() => networkProblems(postParseNetwork(parseNetworkXml(text, source))));
}
