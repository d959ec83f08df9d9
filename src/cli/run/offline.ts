import { readDomainXml } from '../../conf/domain/read.ts';
import { PassthruError } from '../../conf/error.ts';
import { validateAnyXml } from '../../conf/validate-any.ts';
import { chooseAccel, readProcModules } from '../../qemu/accel.ts';
import { nativeCommandLine } from '../../qemu/native.ts';
import type { NativeArgv } from '../../protocol/wire.ts';
import type { Invocation } from '../spec.ts';
import { readInput } from './domain.ts';

/** Commands that need no daemon: they only read XML. */

export async function validate({ ctx, args: [file = ''], opts }: Invocation): Promise<void> {
  const r = validateAnyXml(await readInput(file), file);
  if (opts['json']) {
    const problems = r.problems.map((p) => ({
      code: p.code,
      message: p.message,
      hint: p.hint ?? null,
      line: p.line ?? null,
      column: p.column ?? null,
    }));
    ctx.out(`${JSON.stringify({ file, kind: r.kind ?? null, valid: problems.length === 0, problems }, null, 2)}\n`);
    if (problems.length > 0) process.exitCode = 1;
    return;
  }
  if (r.problems.length === 0) {
    ctx.out(`${file} is a valid ${r.kind ?? 'document'}\n`);
    return;
  }
  for (const p of r.problems) process.stderr.write(`error: ${p.message}\n${p.hint ? `hint: ${p.hint}\n` : ''}`);
  throw new PassthruError(
    'XML_INVALID',
    `${file}: ${r.problems.length} problem${r.problems.length === 1 ? '' : 's'} found`,
  );
}

/** The daemon answers (its emulator, accelerator, state directory and spare root ports); with
 *  --offline the same function runs here. */
export async function domxmlToNative({ ctx, args: [file = ''], opts }: Invocation): Promise<void> {
  const xml = await readInput(file);
  if (!opts['offline']) {
    const r = await ctx.client().post<NativeArgv>('/native', { xml });
    ctx.out(opts['json'] ? `${JSON.stringify(r, null, 2)}\n` : argsLines([r.binary, ...r.argv]));
    return;
  }
  const def = readDomainXml(xml, file);
  const argv = nativeCommandLine(def, {
    stateDir: String(opts['stateDir']),
    accel: chooseAccel(await readProcModules()),
    emulator: 'qemu-system-x86_64',
  });
  const [binary = '', ...rest] = argv;
  ctx.out(opts['json'] ? `${JSON.stringify({ binary, argv: rest }, null, 2)}\n` : argsLines(argv));
}

/** libvirt's .args layout: the emulator, then each option with its value on one line, values
 *  that a shell would split single-quoted. */
export function argsLines(argv: readonly string[]): string {
  const quote = (v: string): string => (/^[\w@%+=:,./-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`);
  const lines: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const next = argv[i + 1];
    if (i > 0 && arg.startsWith('-') && next !== undefined && !next.startsWith('-')) {
      lines.push(`${arg} ${quote(next)}`);
      i++;
    } else {
      lines.push(quote(arg));
    }
  }
  return `${lines.join(' \\\n')}\n`;
}
