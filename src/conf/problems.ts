import { PassthruError } from './error.ts';

/** Notes one problem of a definition at the element (and its line) it is about. */
export type Report = (
  line: number | undefined,
  element: string,
  message: string,
  code?: 'XML_INVALID' | 'CONFIG_UNSUPPORTED',
) => void;

/** Runs the validation rules of a definition and returns every problem they report, in order. */
export function collectProblems(rules: (report: Report) => void): PassthruError[] {
  const problems: PassthruError[] = [];
  rules((line, element, message, code = 'XML_INVALID') => {
    const at = line === undefined ? `<${element}>` : `<${element}> at line ${line}`;
    problems.push(new PassthruError(code, `${at}: ${message}`, line === undefined ? {} : { line }));
  });
  return problems;
}

/** The definition, or its first problem thrown: the strict entry points (read*Xml) stop there. */
export function withoutProblems<T>(def: T, problems: readonly PassthruError[]): T {
  const [first] = problems;
  if (first) throw first;
  return def;
}

/** For `passthru validate`: a syntax or grammar error stops reading, so it is the one problem;
 *  anything that is not a PassthruError is a bug and is not turned into a problem. */
export function problemsOf(read: () => readonly PassthruError[]): PassthruError[] {
  try {
    return [...read()];
  } catch (err) {
    if (err instanceof PassthruError) return [err];
    throw err;
  }
}
