import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodePort, encodePort, responseOf } from '../../src/host/linux/vf-port.ts';
import { associatePort, disassociatePort } from '../../src/host/port-profile.ts';
import { injectFault } from '../../src/host/sim/faults.ts';
import { setSwitchAnswer } from '../../src/host/sim/state.ts';
import type { VfPortProfile } from '../../src/host/types.ts';
import { hostError, simHost, treeImage } from './helpers.ts';

const UUID = 'c7a5fdbd-edaf-9455-926a-d65c16db1809';
const qbh: VfPortProfile = { type: '802.1Qbh', profileid: 'finance', instanceUuid: UUID };
const qbg: VfPortProfile = { type: '802.1Qbg', managerid: 11, typeid: 1193047, typeidversion: 2, instanceUuid: UUID };
const fast = { sleep: () => Promise.resolve(), intervalMs: 10, timeoutMs: 200 };

test('netlink: IFLA_VF_PORT encodes as the kernel lays it out and decodes back', () => {
  const raw = encodePort(3, qbg, 'preassociate');
  assert.deepEqual([...(raw.vsiType ?? [])], [11, 0x57, 0x34, 0x12, 2, 0, 0, 0]);
  assert.equal(raw.instanceUuid?.toString('hex'), UUID.replace(/-/g, ''));
  assert.deepEqual(decodePort({ ...raw, response: Buffer.from([0x01, 0x01]) }), {
    vf: 3,
    profile: qbg,
    request: 'preassociate',
    response: 'in-progress',
  });
  const qbhRaw = encodePort(0, qbh, 'associate');
  assert.equal(qbhRaw.profile?.toString(), 'finance\0');
  assert.deepEqual(decodePort(qbhRaw), { vf: 0, profile: qbh, request: 'associate' });
  assert.equal(responseOf(0x104), 'insufficient-resources');
  assert.equal(responseOf(4), 'vtid-violation');
});

test('sim switch: success, in progress then success; disassociate leaves the tree as before', async () => {
  const { dir, kernel, done } = await simHost();
  try {
    const before = treeImage(dir);
    await associatePort(kernel, 'enp6s0f0', 2, qbh, false, fast);
    assert.deepEqual(await kernel.vfPortStatus('enp6s0f0', 2), {
      profile: qbh,
      request: 'associate',
      response: 'success',
    });
    await disassociatePort(kernel, 'enp6s0f0', 2, qbh);
    assert.equal(await kernel.vfPortStatus('enp6s0f0', 2), undefined);
    assert.equal(treeImage(dir), before);

    await setSwitchAnswer(dir, 'vsi:11/1193047/2', { answer: 'in-progress', polls: 3 });
    let sleeps = 0;
    await associatePort(kernel, 'enp6s0f0', 3, qbg, false, {
      ...fast,
      sleep: () => {
        sleeps++;
        return Promise.resolve();
      },
    });
    assert.equal(sleeps, 3, 'three status reads said in progress');
    assert.equal((await kernel.vfPortStatus('enp6s0f0', 3))?.response, 'success');
  } finally {
    done();
  }
});

test('incoming migration pre-associates (PREASSOCIATE_RR for 802.1Qbh, PREASSOCIATE for 802.1Qbg)', async () => {
  const { kernel, done } = await simHost();
  try {
    await associatePort(kernel, 'enp6s0f0', 1, qbh, true, fast);
    assert.equal((await kernel.vfPortStatus('enp6s0f0', 1))?.request, 'preassociate-rr');
    await associatePort(kernel, 'enp6s0f0', 2, qbg, true, fast);
    assert.equal((await kernel.vfPortStatus('enp6s0f0', 2))?.request, 'preassociate');
  } finally {
    done();
  }
});

test('a refused or unanswered association leaves the VF as it was and says what the switch answered', async () => {
  const { dir, kernel, done } = await simHost();
  try {
    const before = treeImage(dir);
    await setSwitchAnswer(dir, 'finance', { answer: 'failure', response: 'insufficient-resources' });
    await assert.rejects(
      associatePort(kernel, 'enp6s0f0', 4, qbh, false, fast),
      (e: unknown) =>
        hostError('HOST_FAILED')(e) &&
        (e as Error).message ===
          "cannot associate VF 4 of PF enp6s0f0 with 802.1Qbh port profile 'finance': the switch answered 'insufficient-resources'",
    );
    assert.equal(await kernel.vfPortStatus('enp6s0f0', 4), undefined);
    await setSwitchAnswer(dir, 'finance', { answer: 'timeout' });
    await assert.rejects(
      associatePort(kernel, 'enp6s0f0', 4, qbh, false, fast),
      (e: unknown) => hostError('TIMEOUT')(e) && (e as Error).message.includes("still answering 'in-progress'"),
    );
    assert.equal(await kernel.vfPortStatus('enp6s0f0', 4), undefined);
    await injectFault(dir, { op: 'setVfPort', match: 'vf 4 associate finance', nth: 1, errno: 'EIO' });
    await assert.rejects(associatePort(kernel, 'enp6s0f0', 4, qbh, false, fast), hostError('HOST_FAILED', 'EIO'));
    // The answers were chosen through sim/switch.json and faults.json, not the tree.
    assert.equal(treeImage(dir), before);
  } finally {
    done();
  }
});

test('igb has no VF ports: refused before anything changes, naming the driver', async () => {
  const { dir, kernel, done } = await simHost('intel-82576');
  try {
    const before = treeImage(dir);
    await assert.rejects(
      associatePort(kernel, 'enp1s0f0', 0, qbh, false, fast),
      (e: unknown) =>
        hostError('CONFIG_UNSUPPORTED')(e) &&
        /PF driver igb cannot set port profile 802.1Qbh/.test((e as Error).message),
    );
    await assert.rejects(kernel.setVfPort('enp1s0f0', 0, qbh, 'associate'), hostError('HOST_FAILED', 'EOPNOTSUPP'));
    assert.equal(treeImage(dir), before);
  } finally {
    done();
  }
});
