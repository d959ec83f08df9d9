import { test } from 'node:test';
import fc from 'fast-check';
import { checkOnlyTypedErrors, SEEDS } from './seeds.ts';

/** Mutation fuzzing: damage a valid document of each kind in small ways that reach deep into the
 *  grammar (a changed value, a cut, a duplicated or swapped piece) and check that every parser
 *  answers with typed, located errors only. */
const TOKENS = [
  "'",
  '"',
  '<',
  '>',
  '/>',
  '</a>',
  '&amp;',
  '&bogus;',
  '0x',
  '-1',
  '4096',
  '0xffffffffff',
  '99999999999999999999',
  'yes',
  'no',
  " x='1'",
  '<x/>',
  "<tag id='1'/>",
  "<address type='pci'/>",
  '\u0000',
  '\u00e9',
  ']]>',
  '<!--',
];

const mutation = fc.oneof(
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 12 }) }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    text: fc.oneof(fc.constantFrom(...TOKENS), fc.string({ maxLength: 4 })),
  }),
  fc.record({ kind: fc.constant('digit' as const), at: fc.nat(), digit: fc.integer({ min: 0, max: 15 }) }),
  fc.record({ kind: fc.constant('dup' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 40 }) }),
);

type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

function apply(text: string, m: Mutation): string {
  const at = m.at % (text.length + 1);
  switch (m.kind) {
    case 'delete':
      return text.slice(0, at) + text.slice(at + m.len);
    case 'insert':
      return text.slice(0, at) + m.text + text.slice(at);
    case 'digit': {
      // Change a digit in place: values stay syntactically plausible and reach the value checks.
      const i = text.slice(at).search(/[0-9a-f]/);
      if (i < 0) return text;
      const p = at + i;
      return text.slice(0, p) + m.digit.toString(16) + text.slice(p + 1);
    }
    case 'dup':
      return text.slice(0, at + m.len) + text.slice(at, at + m.len) + text.slice(at + m.len);
  }
}

const RUNS = 60_000;

test(`mutation fuzz of every parser: ${RUNS} inputs, only typed errors`, () => {
  fc.assert(
    fc.property(fc.nat(SEEDS.length - 1), fc.array(mutation, { minLength: 1, maxLength: 3 }), (seed, ms) => {
      checkOnlyTypedErrors(ms.reduce(apply, SEEDS[seed] ?? ''));
    }),
    { numRuns: RUNS },
  );
});
