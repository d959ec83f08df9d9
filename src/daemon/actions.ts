import type {
  DomainSummary,
  NodedevChange,
  NodedevCheck,
  NodeDeviceSummary,
  SriovChange,
  VfTable,
} from '../protocol/wire.ts';

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
  | { readonly kind: 'nodedevVfTable'; readonly name: string }
  | { readonly kind: 'nodedevDetach'; readonly name: string; readonly driver?: string }
  | { readonly kind: 'nodedevReattach'; readonly name: string }
  | { readonly kind: 'nodedevReset'; readonly name: string }
  | { readonly kind: 'nodedevCheck'; readonly name: string }
  | { readonly kind: 'nodedevSriov'; readonly name: string; readonly numVfs: number; readonly autoprobe?: boolean };

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
  nodedevDetach: NodedevChange;
  nodedevReattach: NodedevChange;
  nodedevReset: NodedevChange;
  nodedevCheck: NodedevCheck;
  nodedevSriov: SriovChange;
}

export type ActionKind = Action['kind'];
export type ActionOf<K extends ActionKind> = Extract<Action, { kind: K }>;
