import { release } from 'node:os';
import { PASSTHRU_VERSION } from '../../protocol/version.ts';
import { qemuVersion } from '../../qemu/version.ts';
import type { DaemonContext, HandlerGroup } from '../context.ts';

/** The daemon as a service: what it is and what it runs on (`passthru version`). */
export const serviceHandlers = {
  version: async (_a, ctx: DaemonContext) => {
    const binary = ctx.runs.emulator;
    return {
      daemon: PASSTHRU_VERSION,
      qemu: { binary, ...(await qemuVersion(binary)) },
      host: { backend: ctx.nodedevs.backend, kernel: release() },
    };
  },
} satisfies HandlerGroup<'version'>;
