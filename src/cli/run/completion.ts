import { argName, flagOf, GLOBAL_OPTIONS } from '../args.ts';
import type { CommandSpec, GroupSpec } from '../spec.ts';

/** What a positional argument completes to, asked of the daemon (`passthru completion names`). */
export const NAME_KINDS = ['domain', 'network', 'devicepool', 'nodedev'] as const;
export type NameKind = (typeof NAME_KINDS)[number];

/** Fixed words some arguments take, by argument name. */
const WORDS: Readonly<Record<string, readonly string[]>> = { shell: ['bash', 'zsh', 'names'], kind: NAME_KINDS };

/**
 * Each positional of a command as the script completes it: a NameKind, `file`, `dir`, a
 * comma-joined list of words, or `-` (nothing to offer: an alias, a destination URI). Read off
 * the table: the argument's name, and for `<name>` the command's subject (net-*, devpool-*,
 * nodedev-*; else a domain).
 */
export function argKinds(spec: CommandSpec): string[] {
  return (spec.args ?? []).map((a) => {
    const name = argName(a).replace(/^[<[]|(\.\.\.)?[>\]]$/g, '');
    const words = WORDS[name];
    if (words) return words.join(',');
    if (name === 'file' || name === 'dir') return name;
    if (spec.name.startsWith('nodedev-') || name === 'device' || name === 'pf') return 'nodedev';
    if (name === 'network') return 'network';
    if (name !== 'name') return '-';
    if (spec.name.startsWith('net-')) return 'network';
    if (spec.name.startsWith('devpool-')) return 'devicepool';
    return 'domain';
  });
}

const q = (s: string): string => `'${s}'`;

/**
 * The completion script of `shell`, generated from the command table: the commands, each one's
 * flags and what its arguments complete to. Names (domains, networks, device pools, node
 * devices) come from `passthru completion names KIND`, which prints nothing when no daemon answers.
 */
export function completionScript(
  shell: 'bash' | 'zsh',
  commands: readonly CommandSpec[],
  groups: readonly GroupSpec[],
): string {
  const firstWords = [...new Set([...commands.map((c) => c.name.split(' ')[0] ?? ''), ...groups.map((g) => g.name)])];
  const specs = new Map<string, { flags: string[]; valued: string[]; args: string[]; subs: string[] }>();
  for (const first of firstWords) specs.set(first, { flags: [], valued: [], args: [], subs: [] });
  for (const c of commands) {
    const flags = (c.options ?? []).map(flagOf);
    const entry = {
      flags: flags.flatMap((f) => [f.long, ...(f.short ? [f.short] : [])]),
      valued: flags.filter((f) => f.value !== undefined).flatMap((f) => [f.long, ...(f.short ? [f.short] : [])]),
      args: argKinds(c),
      subs: specs.get(c.name)?.subs ?? [],
    };
    specs.set(c.name, entry);
    const [first, second] = c.name.split(' ');
    if (first !== undefined && second !== undefined) specs.get(first)?.subs.push(second);
  }
  const globals = GLOBAL_OPTIONS.map(flagOf).flatMap((f) => [f.long, ...(f.short ? [f.short] : [])]);
  const cases = [...specs].map(
    ([name, s]) =>
      `    ${q(name)}) _pt_flags=${q(s.flags.join(' '))} _pt_valued=${q(s.valued.join(' '))} ` +
      `_pt_args=${q(s.args.join(' '))} _pt_subs=${q(s.subs.join(' '))} ;;`,
  );
  const bash = `# passthru completion for ${shell}, generated from passthru's command table:
#   eval "$(passthru completion ${shell})"
_passthru_spec() {
  _pt_flags='' _pt_valued='' _pt_args='' _pt_subs=''
  case "$1" in
${cases.join('\n')}
  esac
}
_passthru() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}"
  local cmd='' n=0 i w kind words='' conn=() kinds=()
  local _pt_flags='' _pt_valued='' _pt_args='' _pt_subs=''
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    case "$w" in
      -c | --connect) conn+=(-c "\${COMP_WORDS[i+1]}"); ((i++)); continue ;;
      --connect=*) conn+=(-c "\${w#--connect=}"); continue ;;
      -r | --readonly) conn+=(-r); continue ;;
      -*) [[ " $_pt_valued " == *" $w "* ]] && ((i++)); continue ;;
    esac
    if [[ -z $cmd ]]; then cmd=$w; _passthru_spec "$cmd"
    elif ((n == 0)) && [[ " $_pt_subs " == *" $w "* ]]; then cmd="$cmd $w"; _passthru_spec "$cmd"
    else ((n++)); fi
  done
  case "$prev" in
    -c | --connect) COMPREPLY=($(compgen -f -- "$cur")); return ;;
  esac
  if [[ -n $prev && " $_pt_valued " == *" $prev "* ]]; then COMPREPLY=(); return; fi
  if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W "$_pt_flags ${globals.join(' ')}" -- "$cur")); return; fi
  if [[ -z $cmd ]]; then COMPREPLY=($(compgen -W ${q(firstWords.join(' '))} -- "$cur")); return; fi
  ((n == 0)) && words=$_pt_subs
  read -r -a kinds <<<"$_pt_args"
  kind="\${kinds[n]:-}"
  case "$kind" in
    file) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    dir) COMPREPLY=($(compgen -d -- "$cur")); return ;;
    domain | network | devicepool | nodedev) words="$words $(passthru "\${conn[@]}" completion names "$kind" 2>/dev/null)" ;;
    '' | -) ;;
    *) words="$words \${kind//,/ }" ;;
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -F _passthru passthru
`;
  return shell === 'zsh' ? `autoload -U +X bashcompinit && bashcompinit\n${bash}` : bash;
}
