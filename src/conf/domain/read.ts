import type { PassthruError } from '../error.ts';
import { problemsOf } from '../problems.ts';
import { parseDomainXml } from './parse.ts';
import { type PostParseOptions, postParseDomain } from './postparse.ts';
import type { DomainDef } from './types.ts';
import { domainProblems, validateDomain } from './validate.ts';

/** The one entry point for a domain document: parse -> postParse -> validate. Throws the first
 *  problem as a PassthruError with its line. */
export function readDomainXml(text: string, source?: string, opts: PostParseOptions = {}): DomainDef {
  return validateDomain(postParseDomain(parseDomainXml(text, source), opts));
}

/** Every problem of a domain document, for `passthru validate`: a syntax or grammar error stops
 *  there (one error), otherwise all rule violations. Never throws. */
export function domainXmlProblems(text: string, source?: string): PassthruError[] {
  return problemsOf(() => domainProblems(postParseDomain(parseDomainXml(text, source))));
}
