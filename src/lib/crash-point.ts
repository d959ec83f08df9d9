/**
 * Fault injection for the crash tier. PASSTHRU_FAULT_CRASH_AT=NAME:N kills the daemon with
 * SIGKILL at the N-th time (1-based) it passes the crash point NAME, the worst instant there
 * is: what was recorded before it is on disk and nothing after it has happened. Points:
 *   journal-before right before each write of the device journal (hostdev/journal.ts)
 *   journal-after  right after it
 *   qemu-launched  QEMU is up (paused) and its status is not yet final (daemon/vm-runner.ts)
 */
const passes = new Map<string, number>();

export function crashPoint(name: string): void {
  const n = (passes.get(name) ?? 0) + 1;
  passes.set(name, n);
  const spec = process.env['PASSTHRU_FAULT_CRASH_AT'];
  if (!spec) return;
  const [point, nth] = spec.split(':');
  if (point === name && n === Number(nth ?? '1')) process.kill(process.pid, 'SIGKILL');
}

/** How many times this process passed the crash point: the crash tier checks its enumeration of
 *  kill points against what a run really did. */
export function crashPointPasses(name: string): number {
  return passes.get(name) ?? 0;
}
