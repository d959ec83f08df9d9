import { type FileHandle, mkdir, open, readFile, rename, stat } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface RotatingLogOptions {
  /** The file is rotated before a line would take it past this size (a lone longer line is
   *  still written, alone in its file). */
  readonly maxBytes: number;
  /** Rotated files kept beside it: `<path>.1` (newest) .. `<path>.<keep>`; older ones go. */
  readonly keep: number;
}

/**
 * An append-only file of lines, rotated by size as logrotate would (`path` -> `path.1` ->
 * `path.2` ...). Lines are written one at a time in the order given, each by one write(2) on an
 * O_APPEND file, so a crash loses at most the line being written and never interleaves two.
 * Not fsynced per line: it is a record for people, the device journal is the crash record.
 */
export class RotatingLog {
  readonly path: string;
  readonly #o: RotatingLogOptions;
  #fh: FileHandle | undefined;
  #size = 0;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(path: string, o: RotatingLogOptions) {
    this.path = path;
    this.#o = o;
  }

  static async open(path: string, o: RotatingLogOptions): Promise<RotatingLog> {
    const log = new RotatingLog(path, o);
    await mkdir(dirname(path), { recursive: true, mode: 0o750 });
    await log.#reopen();
    return log;
  }

  append(line: string): Promise<void> {
    const data = Buffer.from(line.endsWith('\n') ? line : `${line}\n`);
    const next = this.#queue.then(async () => {
      if (this.#size > 0 && this.#size + data.length > this.#o.maxBytes) await this.#rotate();
      const fh = this.#fh ?? (await this.#reopen());
      await fh.write(data);
      this.#size += data.length;
    });
    this.#queue = next.catch(() => undefined);
    return next;
  }

  /** Every line kept, oldest first (the rotated files, then the current one). */
  async lines(): Promise<string[]> {
    await this.#queue;
    const out: string[] = [];
    for (let i = this.#o.keep; i >= 0; i--) {
      const text = await readFile(i === 0 ? this.path : `${this.path}.${i}`, 'utf8').catch(() => '');
      for (const line of text.split('\n')) if (line !== '') out.push(line);
    }
    return out;
  }

  async close(): Promise<void> {
    await this.#queue;
    await this.#fh?.close();
    this.#fh = undefined;
  }

  async #rotate(): Promise<void> {
    await this.#fh?.close();
    this.#fh = undefined;
    for (let i = this.#o.keep - 1; i >= 1; i--) {
      await rename(`${this.path}.${i}`, `${this.path}.${i + 1}`).catch(ignoreMissing);
    }
    if (this.#o.keep > 0) await rename(this.path, `${this.path}.1`).catch(ignoreMissing);
    else await (await open(this.path, 'w')).close();
    await this.#reopen();
  }

  async #reopen(): Promise<FileHandle> {
    this.#fh = await open(this.path, 'a', 0o640);
    this.#size = (await stat(this.path)).size;
    return this.#fh;
  }
}

function ignoreMissing(err: NodeJS.ErrnoException): void {
  if (err.code !== 'ENOENT') throw err;
}
