import type { DomainSummary, NodeDeviceSummary, VfTable } from '../protocol/wire.ts';

/** Everything the daemon can be asked to do: one union, one door (Daemon.handle). */
export type Action =
  | { readonly kind: 'define'; readonly xml: string }
  | { readonly kind: 'undefine'; readonly name: string }
  | { readonly kind: 'start'; readonly name: string }
  | { readonly kind: 'destroy'; readonly name: string }
  | { readonly kind: 'list' }
  | { readonly kind: 'dumpxml'; readonly name: string; readonly inactive: boolean }
  | { readonly kind: 'nodedevList'; readonly cap?: 'pci' | 'net' }
  | { readonly kind: 'nodedevDumpxml'; readonly name: string }
  | { readonly kind: 'nodedevVfTable'; readonly name: string };

export interface ActionResults {
  define: DomainSummary;
  undefine: Record<string, never>;
  start: DomainSummary;
  destroy: DomainSummary;
  list: DomainSummary[];
  dumpxml: { xml: string };
  nodedevList: NodeDeviceSummary[];
  nodedevDumpxml: { xml: string };
  nodedevVfTable: VfTable;
}

export type ActionKind = Action['kind'];
export type ActionOf<K extends ActionKind> = Extract<Action, { kind: K }>;
