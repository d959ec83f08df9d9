import { EventEmitter } from 'node:events';
import type { DaemonEvent } from '../protocol/wire.ts';

/** The daemon's event stream; the API serves it as Server-Sent Events. Each event gets a
 *  sequence number so a client can resume with Last-Event-ID. */
export class EventBus {
  readonly #emitter = new EventEmitter();
  readonly #recent: { id: number; event: DaemonEvent }[] = [];
  #seq = 0;

  constructor() {
    this.#emitter.setMaxListeners(0);
  }

  emit(event: DaemonEvent): void {
    const entry = { id: ++this.#seq, event };
    this.#recent.push(entry);
    if (this.#recent.length > 256) this.#recent.shift();
    this.#emitter.emit('event', entry);
  }

  /** Events after `lastId` still in memory, then live ones until the returned function is called. */
  subscribe(listener: (id: number, event: DaemonEvent) => void, lastId?: number): () => void {
    if (lastId !== undefined) for (const e of this.#recent) if (e.id > lastId) listener(e.id, e.event);
    const fn = (e: { id: number; event: DaemonEvent }): void => listener(e.id, e.event);
    this.#emitter.on('event', fn);
    return () => this.#emitter.off('event', fn);
  }
}
