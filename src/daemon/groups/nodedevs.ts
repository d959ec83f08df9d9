import type { HandlerGroup } from '../context.ts';

/** Node devices: answered from the host as it is now; changes go through the device manager. */
export const nodedevHandlers = {
  nodedevList: (a, ctx) => ctx.nodedevs.list(a.cap),
  nodedevDumpxml: async (a, ctx) => ({ xml: await ctx.nodedevs.dumpxml(a.name) }),
  nodedevVfTable: (a, ctx) => ctx.nodedevs.vfTable(a.name),
  nodedevDetach: (a, ctx) => ctx.nodedevs.detach(a.name, a.driver, a.force === true),
  nodedevReattach: (a, ctx) => ctx.nodedevs.reattach(a.name),
  nodedevReset: (a, ctx) => ctx.nodedevs.reset(a.name),
  nodedevCheck: (a, ctx) => ctx.nodedevs.check(a.name),
  nodedevSriov: (a, ctx) => ctx.nodedevs.sriov(a.name, a.numVfs, a.autoprobe),
} satisfies HandlerGroup<
  | 'nodedevList'
  | 'nodedevDumpxml'
  | 'nodedevVfTable'
  | 'nodedevDetach'
  | 'nodedevReattach'
  | 'nodedevReset'
  | 'nodedevCheck'
  | 'nodedevSriov'
>;
