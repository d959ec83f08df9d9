import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { chooseAccel, readProcModules } from '../../src/qemu/accel.ts';

test('accel: kvm only with a hardware KVM module loaded', () => {
  const line = (name: string): string => `${name} 1372160 0 - Live 0x0000000000000000\n`;
  assert.equal(chooseAccel(''), 'tcg');
  assert.equal(chooseAccel(line('kvm') + line('kvm_pvm')), 'tcg');
  assert.equal(chooseAccel(line('kvm_intel_x')), 'tcg');
  assert.equal(chooseAccel(line('kvm') + line('kvm_intel')), 'kvm');
  assert.equal(chooseAccel(line('kvm_amd') + line('kvm')), 'kvm');
});

test('accel: /proc/modules is read as text, and a missing file reads as no modules', async () => {
  const file = join(tmpdir(), `passthru-modules-${process.pid}`);
  await writeFile(file, 'kvm_amd 1 0 - Live 0x0\n');
  assert.equal(chooseAccel(await readProcModules(file)), 'kvm');
  assert.equal(await readProcModules(join(tmpdir(), 'passthru-no-such-file')), '');
});
