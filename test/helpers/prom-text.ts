/**
 * A strict reader of Prometheus' text exposition format 0.0.4 (the format's own rules, as
 * Prometheus' expfmt parser applies them): every line is a HELP, a TYPE, a sample, another
 * comment or empty; a sample
 * belongs to a family whose TYPE came before it; names and label names are of the allowed
 * characters; label values are quoted with only \\, \" and \n escaped; values are floats;
 * no series twice; a histogram's buckets have `le`, are cumulative, and end in +Inf equal to
 * its _count. Throws on the first violation, naming the line.
 */
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Family {
  readonly type: string;
  readonly help?: string;
  readonly samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

export function parsePromText(text: string): Map<string, Family> {
  if (!text.endsWith('\n')) throw new Error('the exposition does not end with a newline');
  const families = new Map<string, Family>();
  const helps = new Map<string, string>();
  const seen = new Set<string>();
  const lines = text.slice(0, -1).split('\n');
  lines.forEach((line, i) => {
    const where = `line ${i + 1} '${line}'`;
    if (line === '') return; // the format ignores empty lines (prom-client puts one between families)
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!m) return; // a plain comment
      const [, kind = '', name = '', rest = ''] = m;
      if (!NAME.test(name)) throw new Error(`${where}: bad metric name`);
      if (kind === 'HELP') {
        if (helps.has(name)) throw new Error(`${where}: second HELP`);
        helps.set(name, rest);
        return;
      }
      if (!TYPES.has(rest)) throw new Error(`${where}: unknown type`);
      if (families.has(name)) throw new Error(`${where}: second TYPE`);
      const help = helps.get(name);
      families.set(name, { type: rest, ...(help === undefined ? {} : { help }), samples: [] });
      return;
    }
    const s = parseSample(line, where);
    const family = familyOf(families, s.name);
    if (!family) throw new Error(`${where}: sample of a family with no TYPE before it`);
    const key = `${s.name}${JSON.stringify(Object.entries(s.labels).sort())}`;
    if (seen.has(key)) throw new Error(`${where}: the same series twice`);
    seen.add(key);
    family.samples.push(s);
  });
  for (const [name, f] of families) if (f.type === 'histogram') checkHistogram(name, f);
  return families;
}

function familyOf(families: Map<string, Family>, sample: string): Family | undefined {
  const direct = families.get(sample);
  if (direct) return direct;
  const m = /^(.*)_(bucket|sum|count)$/.exec(sample);
  const f = m?.[1] === undefined ? undefined : families.get(m[1]);
  return f && (f.type === 'histogram' || (f.type === 'summary' && m?.[2] !== 'bucket')) ? f : undefined;
}

function parseSample(line: string, where: string): Sample {
  const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)( -?\d+)?$/.exec(line);
  if (!m?.[1] || m[3] === undefined) throw new Error(`${where}: not a sample`);
  const labels: Record<string, string> = {};
  if (m[2] !== undefined) {
    let rest = m[2].slice(1, -1);
    while (rest !== '') {
      const l = /^([^=]+)="((?:[^"\\\n]|\\[\\"n])*)"(,?)/.exec(rest);
      if (!l?.[1] || l[2] === undefined) throw new Error(`${where}: bad label pair at '${rest}'`);
      if (!LABEL.test(l[1])) throw new Error(`${where}: bad label name '${l[1]}'`);
      if (l[1] in labels) throw new Error(`${where}: label '${l[1]}' twice`);
      labels[l[1]] = l[2].replace(/\\(["\\n])/g, (_s, c: string) => (c === 'n' ? '\n' : c));
      rest = rest.slice(l[0].length);
      if (l[3] === '' && rest !== '') throw new Error(`${where}: labels not separated by a comma`);
    }
  }
  // Values are read as Go's strconv.ParseFloat reads them (Prometheus' parser): decimal or
  // exponent forms, and inf, infinity, nan in any case (prom-client writes "Nan").
  const v = m[3];
  const special = /^([+-]?)(inf|infinity|nan)$/i.exec(v);
  if (!special && !/^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/.test(v)) throw new Error(`${where}: bad value`);
  const value = !special
    ? Number(v)
    : special[2]?.toLowerCase() === 'nan'
      ? Number.NaN
      : special[1] === '-'
        ? -Infinity
        : Infinity;
  return { name: m[1], labels, value };
}

function checkHistogram(name: string, f: Family): void {
  const series = new Map<string, Sample[]>();
  const counts = new Map<string, number>();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    if (s.name === `${name}_bucket`) {
      if (le === undefined) throw new Error(`${name}: a bucket without le`);
      series.set(key, [...(series.get(key) ?? []), s]);
    } else if (s.name === `${name}_count`) counts.set(key, s.value);
  }
  for (const [key, buckets] of series) {
    let last = -1;
    let lastLe = -Infinity;
    for (const b of buckets) {
      const le = b.labels['le'] === '+Inf' ? Infinity : Number(b.labels['le']);
      if (Number.isNaN(le)) throw new Error(`${name}${key}: a bucket's le is not a number`);
      if (!(le > lastLe)) throw new Error(`${name}${key}: buckets not in increasing le`);
      if (b.value < last) throw new Error(`${name}${key}: buckets not cumulative`);
      last = b.value;
      lastLe = le;
    }
    if (lastLe !== Infinity) throw new Error(`${name}${key}: no +Inf bucket`);
    if (counts.get(key) !== last) throw new Error(`${name}${key}: _count is not the +Inf bucket`);
  }
}

/** The value of one series (undefined when absent). */
export function sampleValue(
  families: Map<string, Family>,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): number | undefined {
  for (const f of families.values()) {
    for (const s of f.samples) {
      if (s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)) return s.value;
    }
  }
  return undefined;
}
