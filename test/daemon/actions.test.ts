import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isReadOnly, READ_ONLY } from '../../src/daemon/actions.ts';

test('the read-only table: what only reads is true, everything that changes the host or the store is not', () => {
  assert.equal(isReadOnly({ kind: 'list' }), true);
  assert.equal(isReadOnly({ kind: 'dumpxml', name: 'a', inactive: false }), true);
  assert.equal(isReadOnly({ kind: 'nodedevCheck', name: 'a' }), true);
  for (const kind of ['define', 'undefine', 'start', 'destroy', 'nodedevDetach', 'nodedevSriov'] as const) {
    assert.equal(READ_ONLY[kind], false, kind);
  }
});
