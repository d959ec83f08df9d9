import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { DiskDef } from '../../src/conf/domain/types.ts';
import { PassthruError } from '../../src/conf/error.ts';
import { diskImages, parseQcow2Header, readBackingChain } from '../../src/host/disk-images.ts';
import { ImageClaims } from '../../src/daemon/image-claims.ts';

/** Images made by qemu-img (qemu-utils), as an operator makes them. */
function qemuImg(...args: string[]): void {
  execFileSync('qemu-img', args, { stdio: 'ignore' });
}

function withDir(work: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'pt-images-'));
  return work(dir).finally(() => rmSync(dir, { recursive: true, force: true }));
}

const disk = (source: string, extra: Partial<DiskDef> = {}): DiskDef => ({
  type: 'file',
  device: 'disk',
  format: 'qcow2',
  source,
  target: { dev: 'vda', bus: 'virtio' },
  ...extra,
});

test('a qcow2 chain is read from the headers: relative backing paths, formats, raw at the bottom', async () => {
  await withDir(async (dir) => {
    qemuImg('create', '-q', '-f', 'raw', join(dir, 'base.raw'), '1M');
    qemuImg('create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', 'base.raw', join(dir, 'mid.qcow2'));
    qemuImg('create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', join(dir, 'mid.qcow2'), join(dir, 'top.qcow2'), '2M');
    const chain = await readBackingChain(disk(join(dir, 'top.qcow2')), 'web1');
    assert.deepEqual(chain, {
      type: 'file',
      format: 'qcow2',
      path: join(dir, 'mid.qcow2'),
      backingStore: { type: 'file', format: 'raw', path: join(dir, 'base.raw'), backingStore: 'none' },
    });
    const header = parseQcow2Header(
      execFileSync('head', ['-c', '4096', join(dir, 'top.qcow2')], { encoding: 'buffer' }),
    );
    assert.equal(header?.virtualSize, 2n * 1024n * 1024n);
    assert.equal(header?.backingFormat, 'qcow2');
    // A raw image has no chain, whatever its bytes.
    assert.equal(await readBackingChain(disk(join(dir, 'base.raw'), { format: 'raw' }), 'web1'), 'none');
  });
});

test('a missing image, a missing backing file, a header without backing format: errors naming them', async () => {
  await withDir(async (dir) => {
    await assert.rejects(readBackingChain(disk(join(dir, 'nope.qcow2')), 'web1'), (e: PassthruError) => {
      assert.equal(e.code, 'NO_DEVICE');
      assert.match(e.message, /disk vda of domain web1: image .*nope\.qcow2 does not exist/);
      return true;
    });
    qemuImg('create', '-q', '-f', 'qcow2', join(dir, 'base.qcow2'), '1M');
    qemuImg('create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', 'base.qcow2', join(dir, 'top.qcow2'));
    rmSync(join(dir, 'base.qcow2'));
    await assert.rejects(readBackingChain(disk(join(dir, 'top.qcow2')), 'web1'), (e: PassthruError) => {
      assert.equal(e.code, 'NO_DEVICE');
      assert.match(e.message, /backing file .*base\.qcow2 of image .*top\.qcow2 does not exist/);
      return true;
    });
    qemuImg('create', '-q', '-f', 'qcow2', join(dir, 'base.qcow2'), '1M');
    // Images made by old qemu-img name no backing format (today's refuses to): turn the
    // backing-format header extension into an unknown one, which QEMU skips too.
    const top = readFileSync(join(dir, 'top.qcow2'));
    const at = top.indexOf(Buffer.from([0xe2, 0x79, 0x2a, 0xca]));
    assert.ok(at > 0, 'the backing-format extension is there');
    top.writeUInt32BE(0x12345678, at);
    writeFileSync(join(dir, 'top.qcow2'), top);
    await assert.rejects(
      readBackingChain(disk(join(dir, 'top.qcow2')), 'web1'),
      /does not say the format of its backing file/,
    );
    writeFileSync(join(dir, 'plain.img'), Buffer.alloc(4096));
    await assert.rejects(readBackingChain(disk(join(dir, 'plain.img')), 'web1'), /is not a qcow2 image/);
  });
});

test('a chain that loops back on itself is refused', async () => {
  await withDir(async (dir) => {
    qemuImg('create', '-q', '-f', 'qcow2', join(dir, 'a.qcow2'), '1M');
    qemuImg('create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', 'a.qcow2', join(dir, 'b.qcow2'));
    symlinkSync(join(dir, 'b.qcow2'), join(dir, 'b-link.qcow2'));
    qemuImg('rebase', '-q', '-u', '-F', 'qcow2', '-b', 'b-link.qcow2', join(dir, 'a.qcow2'));
    await assert.rejects(readBackingChain(disk(join(dir, 'b.qcow2')), 'web1'), /appears twice in its backing chain/);
  });
});

test('image claims: one writer per image; read-only sharing of a base is fine', async () => {
  await withDir(async (dir) => {
    qemuImg('create', '-q', '-f', 'qcow2', join(dir, 'base.qcow2'), '1M');
    qemuImg('create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', 'base.qcow2', join(dir, 'a.qcow2'));
    qemuImg('create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', 'base.qcow2', join(dir, 'b.qcow2'));
    const withChain = async (path: string): Promise<DiskDef> => {
      const d = disk(path);
      return { ...d, backingStore: await readBackingChain(d, 'x') };
    };
    const def = async (name: string, path: string) => ({
      name,
      memoryKiB: 1024,
      vcpus: 1,
      os: { type: 'hvm' as const },
      devices: {
        controllers: [],
        hostdevs: [],
        interfaces: [],
        serials: [],
        consoles: [],
        disks: [await withChain(path)],
      },
    });
    const claims = new ImageClaims();
    claims.claim('web1', await diskImages(await def('web1', join(dir, 'a.qcow2'))));
    claims.claim('web2', await diskImages(await def('web2', join(dir, 'b.qcow2'))));
    assert.throws(
      () => claims.claim('web3', new Map([[join(dir, 'a.qcow2'), { disk: 'vdb', writable: false }]])),
      (e: PassthruError) => {
        assert.equal(e.code, 'DEVICE_IN_USE');
        assert.match(e.message, /disk vdb of domain web3: image .*a\.qcow2 is in use by running domain web1/);
        return true;
      },
    );
    claims.release('web1');
    claims.claim('web3', new Map([[join(dir, 'a.qcow2'), { disk: 'vdb', writable: true }]]));
  });
});
