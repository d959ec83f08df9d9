import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { readDomainXml } from '../../src/conf/domain/read.ts';
import { memlockBytes, setMemlock } from '../../src/qemu/memlock.ts';
import { launchCommand } from '../../src/qemu/run-as.ts';

const xml = (extra: string) => `<domain type='kvm'><name>m</name><memory unit='MiB'>512</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='q35'>hvm</type></os><devices>${extra}</devices></domain>`;

test('memlock: guest RAM + 1 GiB with a VFIO device, times the devices with a vIOMMU, nothing without', () => {
  const plain = readDomainXml(xml(''), 'm');
  assert.equal(memlockBytes(plain, 0), undefined);
  assert.equal(memlockBytes(plain, 3), (512 + 1024) * 1024 * 1024);
  const viommu = readDomainXml(xml("<iommu model='intel'/>"), 'm');
  assert.equal(memlockBytes(viommu, 3), 3 * (512 + 1024) * 1024 * 1024);
  assert.deepEqual(launchCommand('qemu', ['-S'], { memlockBytes: undefined }), ['qemu', ['-S']]);
});

/** Max locked memory (soft, hard) of a process, from the kernel's own table. */
async function limits(pid: number): Promise<string[]> {
  const line = (await readFile(`/proc/${pid}/limits`, 'utf8'))
    .split('\n')
    .find((l) => l.startsWith('Max locked memory'));
  return line?.split(/\s{2,}/).slice(1, 3) ?? [];
}

// Raising a hard limit needs CAP_SYS_RESOURCE (passthrud has it as root; this test's container
// may not), lowering it does not: the mechanism is checked with limits below the current ones.
const MiB = 1024 ** 2;

test('memlock: set before the process runs (prlimit execs it, same pid) and changed on a running one', async () => {
  const [bin, argv] = launchCommand('sleep', ['30'], { memlockBytes: 4 * MiB });
  const child = spawn(bin, argv, { stdio: 'ignore' });
  try {
    const pid = child.pid ?? 0;
    // prlimit execs sleep in the same process: wait for the exec, then read its limit.
    for (let i = 0; i < 100 && !(await readFile(`/proc/${pid}/cmdline`, 'utf8')).startsWith('sleep'); i++)
      await sleep(20);
    assert.deepEqual(await limits(pid), [String(4 * MiB), String(4 * MiB)]);
    await setMemlock(pid, 2 * MiB);
    assert.deepEqual(await limits(pid), [String(2 * MiB), String(2 * MiB)]);
  } finally {
    child.kill();
  }
});
