import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

/**
 * The repository stands alone: a clone with nothing beside it runs its tests (`.ci/run` proves
 * it by doing so), and no file sends a reader to a folder outside it. The names are built here
 * so that this file does not match itself.
 */
const ROOT = join(import.meta.dirname, '../..');
const OUTSIDE = [
  ['..', 'shared', ''].join('/'),
  ...['conformance', 'reference', 'design', 'tools', 'hooks'].map((d) => ['shared', d, ''].join('/')),
];

function trackedTextFiles(): string[] {
  const out = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  return out.split('\0').filter((f) => f !== '' && !f.startsWith('test/data/') && !/\.(config|png|gz|tgz)$/.test(f));
}

test('no tracked file names a path outside the repository', () => {
  const offenders: string[] = [];
  for (const file of trackedTextFiles()) {
    let text: string;
    try {
      text = readFileSync(join(ROOT, file), 'utf8');
    } catch {
      continue; // deleted in the work tree but not yet in the index
    }
    text.split('\n').forEach((line, i) => {
      if (OUTSIDE.some((p) => line.includes(p))) offenders.push(`${file}:${i + 1}: ${line.trim()}`);
    });
  }
  assert.deepEqual(offenders, []);
});

test('the libvirt test data says where it comes from and under which licence', () => {
  const readme = readFileSync(join(ROOT, 'test/data/libvirt-9.0.0/README.md'), 'utf8');
  assert.match(readme, /libvirt 9\.0\.0/);
  assert.match(readme, /LGPL-2\.1\+/);
  assert.match(readFileSync(join(ROOT, 'test/data/libvirt-9.0.0/COPYING.LESSER'), 'utf8'), /Version 2\.1/);
});

test('what the shipped code imports is a dependency, not a devDependency (libxml2-wasm is for tests)', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    dependencies: Record<string, string>;
    devDependencies: Record<string, string>;
  };
  assert.equal(pkg.dependencies['libxml2-wasm'], undefined);
  assert.equal(pkg.devDependencies['libxml2-wasm'], '0.7.2');
});
