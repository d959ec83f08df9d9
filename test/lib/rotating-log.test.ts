import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { RotatingLog } from '../../src/lib/rotating-log.ts';

/** 90 bytes with its newline: two fit in a file of 200. */
const line = (i: number): string => JSON.stringify({ i, pad: 'x'.repeat(74 - String(i).length) });

test('rotated by size: no file passes the limit, the oldest beyond `keep` go, lines() gives the rest in order', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'passthru-rotlog-'));
  try {
    const path = join(dir, 'logs', 'audit.jsonl');
    const log = await RotatingLog.open(path, { maxBytes: 200, keep: 2 });
    const each = Buffer.byteLength(`${line(0)}\n`);
    assert.equal(each, 90);
    // Written concurrently: the order given is the order kept.
    await Promise.all(Array.from({ length: 10 }, (_, i) => log.append(line(i))));
    const files = (await readdir(join(dir, 'logs'))).sort();
    assert.deepEqual(files, ['audit.jsonl', 'audit.jsonl.1', 'audit.jsonl.2']);
    for (const f of files) assert.ok((await stat(join(dir, 'logs', f))).size <= 200, `${f} is within the limit`);
    // Two lines a file: 8 and 9 current, 6 and 7 in .1, 4 and 5 in .2; 0..3 rotated away.
    const kept = (await log.lines()).map((l) => (JSON.parse(l) as { i: number }).i);
    assert.deepEqual(kept, [4, 5, 6, 7, 8, 9]);
    assert.equal((await readFile(`${path}.1`, 'utf8')).split('\n')[0], line(6));
    await log.close();

    // Opened again, it goes on from the file's size (not from zero).
    const again = await RotatingLog.open(path, { maxBytes: 200, keep: 2 });
    await again.append(line(10));
    assert.deepEqual(
      (await again.lines()).map((l) => (JSON.parse(l) as { i: number }).i),
      [6, 7, 8, 9, 10],
    );
    assert.deepEqual((await readdir(join(dir, 'logs'))).sort(), files);
    await again.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a line longer than the limit is still written, alone in its file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'passthru-rotlog-'));
  try {
    const log = await RotatingLog.open(join(dir, 'a.jsonl'), { maxBytes: 10, keep: 1 });
    await log.append('"short"');
    await log.append(JSON.stringify('y'.repeat(50)));
    assert.equal((await readFile(join(dir, 'a.jsonl'), 'utf8')).length, 53);
    assert.deepEqual(await log.lines(), ['"short"', JSON.stringify('y'.repeat(50))]);
    await log.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
