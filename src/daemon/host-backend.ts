import { PassthruError } from '../conf/error.ts';

/** `--host` of passthrud: `linux` (the real /sys, rtnetlink, /dev/vfio) or `sim:DIR`. */
export type HostSpec = { readonly backend: 'linux' } | { readonly backend: 'sim'; readonly dir: string };

export function parseHostSpec(text: string): HostSpec {
  if (text === 'linux') return { backend: 'linux' };
  if (text.startsWith('sim:') && text.length > 4) return { backend: 'sim', dir: text.slice(4) };
  throw new PassthruError('INVALID_ARG', `invalid --host '${text}'`, {
    hint: "use 'linux' or 'sim:DIR' (a tree made by 'passthru sim create DIR')",
  });
}
