import { readdir, readFile, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Sysfs } from './types.ts';

/** A missing file is an answer (the attribute does not exist on this device), not an error;
 *  so is an attribute the driver cannot report (phys_port_id reads EOPNOTSUPP on most NICs,
 *  a netdev's speed EINVAL while the link is down). */
function isAbsent(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  // Node names errno 95 ENOTSUP (Linux's EOPNOTSUPP has the same number).
  return ['ENOENT', 'ENOTDIR', 'EINVAL', 'EOPNOTSUPP', 'ENOTSUP', 'ENODEV', 'ENXIO'].includes(code ?? '');
}

/**
 * Sysfs over a directory that plays '/': '/' on linux, the sim tree for sim. Paths are always
 * the kernel's absolute ones ('/sys/bus/pci/devices/...'), so the inventory code cannot tell
 * the two apart; symlinks are real in both, so the kernel's relative links resolve as they do
 * on a host.
 */
export class DirSysfs implements Sysfs {
  readonly root: string;

  constructor(root: string) {
    this.root = root;
  }

  /** The real path of a kernel path under this root. */
  at(path: string): string {
    return this.root === '/' ? path : join(this.root, path);
  }

  async read(path: string): Promise<string | undefined> {
    try {
      const text = await readFile(this.at(path), 'utf8');
      return text.endsWith('\n') ? text.slice(0, -1) : text;
    } catch (err) {
      if (isAbsent(err)) return undefined;
      throw err;
    }
  }

  async readBytes(path: string): Promise<Buffer | undefined> {
    try {
      return await readFile(this.at(path));
    } catch (err) {
      if (isAbsent(err)) return undefined;
      throw err;
    }
  }

  async readLink(path: string): Promise<string | undefined> {
    try {
      return await readlink(this.at(path));
    } catch (err) {
      if (isAbsent(err)) return undefined;
      throw err;
    }
  }

  async list(path: string): Promise<string[]> {
    try {
      return await readdir(this.at(path));
    } catch (err) {
      if (isAbsent(err)) return [];
      throw err;
    }
  }

  async exists(path: string): Promise<boolean> {
    try {
      await stat(this.at(path));
      return true;
    } catch (err) {
      if (isAbsent(err)) return false;
      throw err;
    }
  }
}
