import { createRequire } from 'node:module';
import type * as Prom from 'prom-client';
import { asPassthruError } from '../conf/error.ts';

// prom-client's index loads all it has (push gateway, cluster aggregation, summaries with their
// t-digest, OpenTelemetry exemplars, the default process metrics): ~130 ms of the daemon's
// start on a loaded machine, paid again at every restart. The four classes used here load in
// ~12 ms from their own files (the version is pinned exactly, so the layout is known); the
// default metrics load at the first scrape.
const require = createRequire(import.meta.url);
const Registry = require('prom-client/lib/registry') as typeof Prom.Registry;
const Counter = require('prom-client/lib/counter') as typeof Prom.Counter;
const Gauge = require('prom-client/lib/gauge') as typeof Prom.Gauge;
const Histogram = require('prom-client/lib/histogram') as typeof Prom.Histogram;

/** Where a device stands, as the VF and network gauges count it. */
export type DeviceState = 'free' | 'leased' | 'quarantined' | 'unplug_pending' | 'unhealthy';

/** The daemon's state as the gauges show it, read once per scrape (metrics-state.ts). */
export interface StateCounts {
  /** Each VF of each PF of the host, by its state. */
  readonly pfVfs: readonly { readonly pf: string; readonly state: DeviceState; readonly count: number }[];
  /** Each network and device pool's members, by their state. */
  readonly pools: readonly {
    readonly kind: string;
    readonly name: string;
    readonly state: DeviceState;
    readonly count: number;
  }[];
  readonly domains: readonly { readonly state: string; readonly count: number }[];
  /** Domains with a QEMU the daemon holds. */
  readonly qemuProcesses: number;
}

/** Prometheus' own content type for the text exposition format. */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/**
 * The daemon's metrics (prom-client, one registry per daemon, so daemons in one process stay
 * apart). Counters and histograms are fed in one place, the action door (operation.ts), so a new
 * action is counted without anyone adding a line; the gauges are computed from the daemon's
 * state when scraped (prom-client's collect callbacks), never kept up to date by the handlers.
 */
export class DaemonMetrics {
  readonly registry: Prom.Registry = new Registry();
  readonly #operations: Prom.Counter<'action' | 'result'>;
  readonly #latency: Prom.Histogram<'action'>;
  readonly #restoreFailures: Prom.Counter;
  readonly #migrations: Prom.Counter<'result'>;
  readonly #downtime: Prom.Histogram;
  #defaults = false;
  #counts: Promise<StateCounts> | undefined;
  #scrape: Promise<string> | undefined;

  constructor() {
    const registers = [this.registry];
    this.#operations = new Counter({
      name: 'passthru_operations_total',
      help: 'Actions handled by the daemon, by action and result (ok, or the error code)',
      labelNames: ['action', 'result'],
      registers,
    });
    this.#latency = new Histogram({
      name: 'passthru_operation_duration_seconds',
      help: 'How long the daemon took to handle an action, by action',
      labelNames: ['action'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers,
    });
    this.#restoreFailures = new Counter({
      name: 'passthru_restore_failures_total',
      help: 'Steps the device manager could not undo when giving host devices back (driver, VF settings, port)',
      registers,
    });
    this.#migrations = new Counter({
      name: 'passthru_migrations_total',
      help: 'Outgoing migrations, by result (ok, or the error code)',
      labelNames: ['result'],
      registers,
    });
    this.#downtime = new Histogram({
      name: 'passthru_migration_downtime_seconds',
      help: 'Guest downtime of finished outgoing migrations, as QEMU reports it',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    const counts = (): Promise<StateCounts> => {
      if (this.#counts === undefined) throw new Error('a gauge was collected outside a scrape');
      return this.#counts;
    };
    new Gauge({
      name: 'passthru_pf_vfs',
      help: 'VFs of each PF, by state (free, leased, quarantined, unplug_pending, unhealthy)',
      labelNames: ['pf', 'state'],
      registers,
      async collect() {
        this.reset();
        for (const r of (await counts()).pfVfs) this.set({ pf: r.pf, state: r.state }, r.count);
      },
    });
    new Gauge({
      name: 'passthru_network_devices',
      help: 'Members of each active network and device pool, by state',
      labelNames: ['kind', 'name', 'state'],
      registers,
      async collect() {
        this.reset();
        for (const r of (await counts()).pools) this.set({ kind: r.kind, name: r.name, state: r.state }, r.count);
      },
    });
    new Gauge({
      name: 'passthru_domains',
      help: 'Defined domains, by lifecycle state',
      labelNames: ['state'],
      registers,
      async collect() {
        this.reset();
        for (const r of (await counts()).domains) this.set({ state: r.state }, r.count);
      },
    });
    new Gauge({
      name: 'passthru_qemu_processes',
      help: 'QEMU processes the daemon holds',
      registers,
      async collect() {
        this.set((await counts()).qemuProcesses);
      },
    });
  }

  /** One action done: counted by result and timed; a migration's outcome and downtime too. */
  operation(action: string, seconds: number, outcome: { ok: unknown } | { err: unknown }): void {
    const result = 'ok' in outcome ? 'ok' : asPassthruError(outcome.err).code;
    this.#operations.inc({ action, result });
    this.#latency.observe({ action }, seconds);
    if (action !== 'migrate') return;
    this.#migrations.inc({ result });
    const downtime = 'ok' in outcome ? (outcome.ok as { downtimeMs?: unknown }).downtimeMs : undefined;
    if (typeof downtime === 'number') this.#downtime.observe(downtime / 1000);
  }

  restoreFailed(): void {
    this.#restoreFailures.inc();
  }

  /** The exposition text; the state is read once for all gauges. Concurrent scrapes share one. */
  scrape(read: () => Promise<StateCounts>): Promise<string> {
    this.#scrape ??= (async () => {
      if (!this.#defaults) {
        const collectDefaultMetrics = require('prom-client/lib/defaultMetrics') as typeof Prom.collectDefaultMetrics;
        collectDefaultMetrics({ register: this.registry });
        this.#defaults = true;
      }
      this.#counts = read();
      try {
        return await this.registry.metrics();
      } finally {
        this.#counts = undefined;
        this.#scrape = undefined;
      }
    })();
    return this.#scrape;
  }
}
