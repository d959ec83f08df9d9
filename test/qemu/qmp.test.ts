import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { PassthruError } from '../../src/conf/error.ts';
import { type Clock, QmpClient, QmpCommandError, type QmpEvent } from '../../src/qemu/qmp.ts';
import { type FakeQmp, fakeQmp as startFake, type Msg, type Script } from './helpers/fake-qmp.ts';

let dir = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pt-qmp-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const fakeQmp = (script: Script, opts: { greeting?: unknown } = {}): Promise<FakeQmp> => startFake(dir, script, opts);

/** Timers that fire only when the test says so. */
class ManualClock implements Clock {
  private readonly timers = new Map<number, () => void>();
  private next = 1;
  setTimeout(fn: () => void): unknown {
    const id = this.next++;
    this.timers.set(id, fn);
    return id;
  }
  clearTimeout(h: unknown): void {
    this.timers.delete(h as number);
  }
  get pending(): number {
    return this.timers.size;
  }
  fireAll(): void {
    const fns = [...this.timers.values()];
    this.timers.clear();
    for (const fn of fns) fn();
  }
}

const isQemuFailed = (pattern: RegExp) => (e: unknown) =>
  e instanceof PassthruError && e.code === 'QEMU_FAILED' && pattern.test(e.message);

test('QMP: handshake, then replies matched to commands by id even out of order', async () => {
  let held: Msg | undefined;
  const fake = await fakeQmp((msg, peer) => {
    if (msg.execute === 'slow') held = msg;
    else {
      peer.send({ return: { answer: msg.execute }, id: msg.id });
      if (held) peer.send({ return: { answer: held.execute }, id: held.id });
    }
  });
  const qmp = await QmpClient.connect(fake.path, { name: 'QEMU of domain t' });
  try {
    assert.deepEqual(fake.received[0]?.execute, 'qmp_capabilities');
    assert.deepEqual((qmp.greeting['QMP'] as { version: { qemu: { major: number } } }).version.qemu.major, 7);
    const slow = qmp.execute('slow');
    const fast = qmp.execute('fast', { x: 1 });
    assert.deepEqual(await fast, { answer: 'fast' });
    assert.deepEqual(await slow, { answer: 'slow' });
    assert.deepEqual(fake.received[2]?.arguments, { x: 1 });
    assert.notEqual(fake.received[1]?.id, fake.received[2]?.id);
  } finally {
    await qmp.close();
    fake.server.close();
  }
});

test("QMP: QEMU's error becomes QEMU_FAILED carrying its class and description", async () => {
  const fake = await fakeQmp((msg, peer) => {
    peer.send({ error: { class: 'DeviceNotFound', desc: "Device 'hostdev9' not found" }, id: msg.id });
  });
  const qmp = await QmpClient.connect(fake.path, { name: 'QEMU of domain t' });
  try {
    await assert.rejects(qmp.execute('device_del', { id: 'hostdev9' }), (e: unknown) => {
      assert.ok(e instanceof QmpCommandError);
      assert.equal(e.code, 'QEMU_FAILED');
      assert.equal(e.qmpClass, 'DeviceNotFound');
      assert.match(e.message, /QEMU of domain t refused 'device_del': Device 'hostdev9' not found/);
      return true;
    });
  } finally {
    await qmp.close();
    fake.server.close();
  }
});

test('QMP: events arrive as a stream and waitForEvent picks the one its predicate wants', async () => {
  const fake = await fakeQmp((msg, peer) => {
    peer.send({ return: {}, id: msg.id });
    const ts = { seconds: 1, microseconds: 2 };
    peer.send({
      event: 'DEVICE_DELETED',
      data: { device: 'hostdev0', path: '/machine/peripheral/hostdev0' },
      timestamp: ts,
    });
    peer.send({
      event: 'DEVICE_DELETED',
      data: { device: 'hostdev1', path: '/machine/peripheral/hostdev1' },
      timestamp: ts,
    });
    peer.send({ event: 'STOP', timestamp: ts });
  });
  const qmp = await QmpClient.connect(fake.path);
  try {
    const stream = qmp.events();
    const second = qmp.waitForEvent('DEVICE_DELETED', (ev) => ev.data['device'] === 'hostdev1');
    await qmp.execute('device_del', { id: 'hostdev1' });
    assert.equal((await second).data['device'], 'hostdev1');
    const seen: QmpEvent[] = [];
    for await (const ev of stream) {
      seen.push(ev);
      if (ev.event === 'STOP') break;
    }
    assert.deepEqual(
      seen.map((e) => `${e.event}:${typeof e.data['device'] === 'string' ? e.data['device'] : ''}`),
      ['DEVICE_DELETED:hostdev0', 'DEVICE_DELETED:hostdev1', 'STOP:'],
    );
    assert.deepEqual(seen[2]?.timestamp, { seconds: 1, microseconds: 2 });
  } finally {
    await qmp.close();
    fake.server.close();
  }
});

test('QMP: a command with no answer times out on the injected clock; a late answer is ignored', async () => {
  const clock = new ManualClock();
  let late: Msg | undefined;
  let sendLate: (() => void) | undefined;
  const fake = await fakeQmp((msg, peer) => {
    if (late !== undefined) return; // later commands stay unanswered too
    late = msg;
    sendLate = () => peer.send({ return: {}, id: msg.id });
  });
  const qmp = await QmpClient.connect(fake.path, { clock, name: 'QEMU of domain t' });
  try {
    assert.equal(clock.pending, 0, 'the handshake left no timer behind');
    const p = qmp.execute('query-status', undefined, 5000);
    const ev = qmp.waitForEvent('RESUME', undefined, 5000);
    while (late === undefined) await new Promise((r) => setImmediate(r));
    clock.fireAll();
    await assert.rejects(
      p,
      (e: unknown) =>
        e instanceof PassthruError && e.code === 'TIMEOUT' && e.message.includes("'query-status' within 5000 ms"),
    );
    await assert.rejects(
      ev,
      (e: unknown) => e instanceof PassthruError && e.code === 'TIMEOUT' && e.message.includes('no RESUME event'),
    );
    sendLate?.();
    // The connection still works after a timeout.
    const again = qmp.execute('query-status');
    while (fake.received.length < 3) await new Promise((r) => setImmediate(r));
    assert.equal(fake.received.at(-1)?.execute, 'query-status');
    const lastId = fake.received.at(-1)?.id;
    assert.notEqual(lastId, late.id);
    fake.server.close();
    await qmp.close();
    await assert.rejects(again, isQemuFailed(/before 'query-status' was answered/));
  } finally {
    await qmp.close();
  }
});

test('QMP: QEMU going away fails what is waiting, ends the event stream, and refuses new commands', async () => {
  const fake = await fakeQmp((_msg, peer) => {
    peer.end();
  });
  const qmp = await QmpClient.connect(fake.path, { name: 'QEMU of domain gone' });
  try {
    const stream = qmp.events();
    const ev = qmp.waitForEvent('SHUTDOWN');
    await assert.rejects(
      qmp.execute('quit'),
      isQemuFailed(/QMP connection closed.*QEMU of domain gone.*before 'quit' was answered/),
    );
    await assert.rejects(ev, isQemuFailed(/QMP connection closed/));
    const rest: QmpEvent[] = [];
    for await (const e of stream) rest.push(e);
    assert.deepEqual(rest, []);
    await qmp.closed;
    assert.equal(qmp.isClosed, true);
    await assert.rejects(qmp.execute('query-status'), isQemuFailed(/closed/));
  } finally {
    fake.server.close();
  }
});

test('QMP: no monitor, a peer that is not QMP, and one that never greets are clear errors', async () => {
  await assert.rejects(
    QmpClient.connect(join(dir, 'nothing.sock'), { name: 'QEMU of domain x' }),
    isQemuFailed(/ENOENT.*QEMU of domain x/),
  );
  const notQmp = await fakeQmp(() => undefined, { greeting: { hello: 'world' } });
  await assert.rejects(QmpClient.connect(notQmp.path), isQemuFailed(/did not greet as QMP/));
  notQmp.server.close();

  const clock = new ManualClock();
  const silent = await fakeQmp(() => undefined, { greeting: null });
  const p = QmpClient.connect(silent.path, { clock, connectTimeoutMs: 100 });
  while (clock.pending === 0) await new Promise((r) => setImmediate(r));
  clock.fireAll();
  await assert.rejects(
    p,
    (e: unknown) => e instanceof PassthruError && e.code === 'TIMEOUT' && e.message.includes('handshake'),
  );
  silent.server.close();
});
