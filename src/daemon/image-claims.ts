import { PassthruError } from '../conf/error.ts';

type Images = ReadonlyMap<string, { readonly disk: string; readonly writable: boolean }>;

/**
 * Which running domain has which disk image open. Two domains may share an image only when
 * neither writes it (a common read-only base under two overlays); an image one domain writes is
 * refused to every other. Check and claim are one synchronous step, so two starts racing for
 * the same image cannot both pass (each domain's start runs under its own lock only).
 */
export class ImageClaims {
  readonly #held = new Map<string, Images>();

  claim(domain: string, images: Images, opts: { force?: boolean } = {}): void {
    if (!opts.force) {
      for (const [other, theirs] of this.#held) {
        if (other === domain) continue;
        for (const [path, mine] of images) {
          const t = theirs.get(path);
          if (t === undefined || (!t.writable && !mine.writable)) continue;
          throw new PassthruError(
            'DEVICE_IN_USE',
            `disk ${mine.disk} of domain ${domain}: image ${path} is in use by running domain ${other} (its disk ${t.disk}${t.writable ? ', writable' : ''})`,
            {
              hint: 'give each domain its own image, or an overlay on a shared base: qemu-img create -f qcow2 -F qcow2 -b BASE NEW',
            },
          );
        }
      }
    }
    this.#held.set(domain, images);
  }

  release(domain: string): void {
    this.#held.delete(domain);
  }
}
