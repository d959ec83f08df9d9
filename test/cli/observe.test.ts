import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PassthruError } from '../../src/conf/error.ts';
import { sinceTime } from '../../src/cli/run/observe.ts';

test('audit --since: an ISO time as given, an age back from now, anything else refused', () => {
  const now = new Date('2026-11-30T06:00:00Z');
  assert.equal(sinceTime('2026-11-29T23:15:00+01:00', now), '2026-11-29T22:15:00.000Z');
  assert.equal(sinceTime('90s', now), '2026-11-30T05:58:30.000Z');
  assert.equal(sinceTime('10m', now), '2026-11-30T05:50:00.000Z');
  assert.equal(sinceTime('2h', now), '2026-11-30T04:00:00.000Z');
  assert.equal(sinceTime('1d', now), '2026-11-29T06:00:00.000Z');
  for (const bad of ['yesterday', '10 minutes', '-5m', ''])
    assert.throws(
      () => sinceTime(bad, now),
      (e: unknown) => e instanceof PassthruError && e.code === 'INVALID_ARG',
    );
});
