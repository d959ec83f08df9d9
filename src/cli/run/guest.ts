import type { Duplex } from 'node:stream';
import type { Invocation } from '../spec.ts';

const enc = encodeURIComponent;
/** Ctrl+] leaves the console, as in virsh and telnet. */
const ESCAPE = 0x1d;

/**
 * `passthru console NAME`: the terminal in raw mode (every key goes to the guest, Ctrl+C too),
 * the guest's output on stdout, until Ctrl+] or the guest's console closes (QEMU exited).
 */
export async function console({ ctx, args: [name = ''] }: Invocation): Promise<void> {
  const stream = await ctx.client().upgrade(`/domains/${enc(name)}/console`, 'passthru-console');
  process.stderr.write(`Connected to domain '${name}'\r\nEscape character is ^] (Ctrl + ])\r\n`);
  await attach(stream, process.stdin, process.stdout);
  process.stderr.write('\r\n');
}

async function attach(stream: Duplex, input: NodeJS.ReadStream, output: NodeJS.WriteStream): Promise<void> {
  const raw = input.isTTY;
  if (raw) input.setRawMode(true);
  try {
    await new Promise<void>((resolve) => {
      const done = (): void => {
        input.off('data', onKey);
        input.pause();
        stream.end();
        resolve();
      };
      const onKey = (chunk: Buffer): void => {
        const at = chunk.indexOf(ESCAPE);
        if (at < 0) {
          stream.write(chunk);
          return;
        }
        if (at > 0) stream.write(chunk.subarray(0, at));
        done();
      };
      input.on('data', onKey);
      input.on('end', done);
      input.resume();
      stream.on('data', (d: Buffer) => output.write(d));
      stream.on('end', done);
      stream.on('error', done);
    });
  } finally {
    if (raw) input.setRawMode(false);
  }
}
