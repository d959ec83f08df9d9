import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readCpuNodes } from '../../src/host/numa.ts';
import { DirSysfs } from '../../src/host/sysfs.ts';

test('host CPU -> NUMA node from the node directories; none shown, no map', async () => {
  const root = await mkdtemp(join(tmpdir(), 'passthru-numa-'));
  try {
    assert.deepEqual(await readCpuNodes(new DirSysfs(root)), new Map());
    const nodes = join(root, 'sys/devices/system/node');
    for (const [n, list] of [
      ['node0', '0-1,4\n'],
      ['node1', '2-3,5\n'],
      ['node2', '\n'],
    ] as const) {
      await mkdir(join(nodes, n), { recursive: true });
      await writeFile(join(nodes, n, 'cpulist'), list);
    }
    await writeFile(join(nodes, 'possible'), '0-2\n');
    assert.deepEqual(
      [...(await readCpuNodes(new DirSysfs(root)))].sort(([a], [b]) => a - b),
      [
        [0, 0],
        [1, 0],
        [2, 1],
        [3, 1],
        [4, 0],
        [5, 1],
      ],
    );
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
