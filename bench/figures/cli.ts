import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSimHost } from '../../src/host/sim/create.ts';
import { startDaemon } from '../../test/helpers/daemon.ts';
import { alternate, type Figure, run } from '../lib/figure.ts';

/**
 * The CLI as a user meets it: the installed `passthru` (the bundle `npm run build:cli` writes to
 * dist/cli/) against a running daemon, alternated with `node -e 0`, the floor of any node
 * program on this machine.
 */
const ROOT = join(import.meta.dirname, '..', '..');

export default [
  {
    id: 'cli.list',
    title: '`passthru list` against a running daemon, against `node -e 0`',
    target: { max: 1.3, text: '<= 1.3x node -e 0' },
    measure: async (ctx) => {
      run('npm', ['run', '--silent', 'build:cli'], { ...process.env, npm_config_loglevel: 'error' });
      const dir = await mkdtemp(join(tmpdir(), 'passthru-bench-'));
      await createSimHost(join(dir, 'host'), 'intel-x710-2port');
      const d = await startDaemon(dir);
      try {
        await d.client.post('/domains', {
          xml: "<domain type='kvm'><name>bench</name><memory unit='MiB'>256</memory><os><type arch='x86_64' machine='q35'>hvm</type></os></domain>",
        });
        const cli = join(ROOT, 'dist', 'cli', 'passthru.js');
        ctx.note('the bundle in dist/cli; one defined domain');
        return await alternate(
          ctx.rounds(21),
          { label: 'node -e 0', run: () => run(process.execPath, ['-e', '0']) },
          {
            label: 'passthru list --all',
            run: () => run(process.execPath, [cli, '-c', d.client.target, 'list', '--all']),
          },
        );
      } finally {
        await d.stop();
        await rm(dir, { recursive: true, force: true });
      }
    },
  },
] satisfies Figure[];
