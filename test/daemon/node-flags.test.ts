import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { DAEMON_NODE_FLAGS } from '../../src/cli/local.ts';

/** The installed passthrud runs through its first line; the CLI's spawn uses DAEMON_NODE_FLAGS:
 *  both must give node the same options, or the daemon's memory differs by how it was started. */
test("passthrud's first line and the CLI's spawn give node the same options", async () => {
  const main = await readFile(join(import.meta.dirname, '..', '..', 'src', 'daemon', 'main.ts'), 'utf8');
  const first = main.split('\n', 1)[0];
  assert.equal(first, `#!/usr/bin/env -S node ${DAEMON_NODE_FLAGS.join(' ')}`);
});
