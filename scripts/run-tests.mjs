// Runs a test tier with node:test through tsx. Node 20's --test does not expand globs, so the
// files are found here. Tiers: unit (everything but e2e/, crash/ and vmlab/), crash (the daemon
// killed at every journal write, ~1 min on an idle machine), e2e (real QEMU + guest), vmlab (real
// kernel in a VM, ~3 min; it installs what it needs), all (every tier; PASSTHRU_VMLAB=0 leaves the
// VM lab out for a quicker run).
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const tier = process.argv[2] ?? 'all';
const files = readdirSync('test', { recursive: true, withFileTypes: true })
  .filter((d) => d.isFile() && d.name.endsWith('.test.ts'))
  .map((d) => join(d.parentPath ?? d.path, d.name))
  .sort();

const isE2e = (f) => f.startsWith(join('test', 'e2e'));
const isVmlab = (f) => f.startsWith(join('test', 'vmlab'));
const isCrash = (f) => f.startsWith(join('test', 'crash'));
const withVmlab = process.env.PASSTHRU_VMLAB !== '0';
const pick = {
  unit: (f) => !isE2e(f) && !isVmlab(f) && !isCrash(f),
  crash: isCrash,
  e2e: isE2e,
  vmlab: isVmlab,
  all: (f) => !isVmlab(f) || withVmlab,
}[tier];
if (!pick) {
  console.error(`unknown test tier '${tier}' (unit, crash, e2e, vmlab, all)`);
  process.exit(2);
}
const chosen = files.filter(pick);
if (chosen.length === 0) {
  console.error(`no test files for tier '${tier}'`);
  process.exit(1);
}
const extra = process.argv.slice(3);
const r = spawnSync(
  process.execPath,
  [
    '--import',
    'tsx',
    '--test',
    '--test-concurrency=2',
    '--test-timeout=300000',
    '--test-force-exit',
    ...extra,
    ...chosen,
  ],
  {
    stdio: 'inherit',
  },
);
process.exit(r.status ?? 1);
