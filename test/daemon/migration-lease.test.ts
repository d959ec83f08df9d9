import assert from 'node:assert/strict';
import { mock, test } from 'node:test';
import { holdLease, renewEveryMs } from '../../src/daemon/migration/lease.ts';

/** The destination's lease on an incoming migration, on a mocked clock (no timing in the test). */

test('a lease lapses once, its full length after the last renew; an ended lease never does', () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    let lapsed = 0;
    const lease = holdLease(1000, () => lapsed++);
    mock.timers.tick(999);
    lease.renew();
    mock.timers.tick(999);
    assert.equal(lapsed, 0, 'renewed before it lapsed');
    mock.timers.tick(1);
    assert.equal(lapsed, 1);
    lease.renew(); // too late: a lapsed lease stays lapsed
    mock.timers.tick(5000);
    assert.equal(lapsed, 1);

    let ended = 0;
    const other = holdLease(1000, () => ended++);
    mock.timers.tick(500);
    other.end();
    other.renew();
    mock.timers.tick(5000);
    assert.equal(ended, 0);
  } finally {
    mock.timers.reset();
  }
});

test('the source renews four times per lease, at most every 10 s and at least every 200 ms', () => {
  assert.equal(renewEveryMs(60_000), 10_000);
  assert.equal(renewEveryMs(3_000), 750);
  assert.equal(renewEveryMs(400), 200);
});
