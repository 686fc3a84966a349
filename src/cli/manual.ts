import type { Command } from 'commander';

/**
 * Man pages and shell completion from the commander definitions that `--help` prints, so none of
 * them can drift from the commands: one walk of the command tree (commander's own Help class:
 * the same visible commands, arguments and options as `--help`), rendered as roff or as a bash
 * completion function (zsh loads it through bashcompinit).
 */
export interface CommandDoc {
  /** The words that reach it: ["fussy", "remote", "cron", "add"]. */
  path: string[];
  usage: string;
  description: string;
  args: Array<{ term: string; description: string; choices?: readonly string[] }>;
  options: Array<{ flags: string; description: string; long?: string; short?: string; takesValue: boolean; choices?: readonly string[] }>;
  commands: CommandDoc[];
}

export function commandDoc(cmd: Command, parent: string[] = []): CommandDoc {
  const help = cmd.createHelp();
  const path = [...parent, cmd.name()];
  return {
    path,
    usage: help.commandUsage(cmd),
    description: cmd.description(),
    args: help.visibleArguments(cmd).map((a) => ({ term: help.argumentTerm(a), description: help.argumentDescription(a), ...(a.argChoices === undefined ? {} : { choices: a.argChoices }) })),
    options: help.visibleOptions(cmd).map((o) => ({ flags: o.flags, description: help.optionDescription(o), long: o.long, short: o.short, takesValue: o.required || o.optional, ...(o.argChoices === undefined ? {} : { choices: o.argChoices }) })),
    commands: help
      .visibleCommands(cmd)
      .filter((c) => c.name() !== 'help')
      .map((c) => commandDoc(c, path)),
  };
}

/** Every command of the tree, depth first, the root first. */
export function allCommands(d: CommandDoc): CommandDoc[] {
  return [d, ...d.commands.flatMap(allCommands)];
}

/** Text for roff: backslashes doubled as \e, and a line never starts with a control character. */
function roff(text: string): string {
  return text
    .replaceAll('\\', '\\e')
    .replaceAll('-', '\\-')
    .split('\n')
    .map((l) => (/^[.']/.test(l) ? `\\&${l}` : l))
    .join('\n');
}

export interface ManPage {
  name: string;
  section: 1 | 5 | 8;
  /** One line for NAME. */
  summary: string;
  /** DESCRIPTION paragraphs. */
  description: string[];
  /** The program whose commands and options the page lists; none for a file's page (fussyd.conf). */
  program?: CommandDoc;
  /** Further sections: title -> paragraphs, or a table of [term, text]. */
  sections?: Array<{ title: string; paragraphs?: string[]; items?: Array<[string, string]> }>;
  seeAlso: string[];
  version: string;
  date: string;
}

/** A man page in roff (man(7) macros). */
export function renderMan(p: ManPage): string {
  const out: string[] = [`.TH ${p.name.toUpperCase()} ${p.section} "${p.date}" "fussy ${p.version}" "fussy"`, '.SH NAME', `${roff(p.name)} \\- ${roff(p.summary)}`];
  const items = (list: Array<[string, string]>): void => {
    for (const [term, text] of list) out.push('.TP', `.B ${roff(term)}`, roff(text));
  };
  // commander's usage starts with the command's words: those in bold, the rest as it is.
  const usage = (c: CommandDoc): string[] => [`.B ${roff(c.path.join(' '))}`, roff(c.usage.startsWith(c.path.join(' ')) ? c.usage.slice(c.path.join(' ').length).trim() : c.usage)];
  if (p.program !== undefined) out.push('.SH SYNOPSIS', ...usage(p.program));
  out.push('.SH DESCRIPTION');
  for (const para of p.description) out.push('.PP', roff(para));
  if (p.program !== undefined) {
    if (p.program.options.length > 0) {
      out.push('.SH OPTIONS');
      items(p.program.options.map((o) => [o.flags, o.description]));
    }
    const subs = allCommands(p.program).slice(1);
    if (subs.length > 0) out.push('.SH COMMANDS');
    for (const c of subs) {
      out.push(`.SS "${roff(c.path.slice(1).join(' '))}"`, '.PP', ...usage(c), '.PP', roff(c.description));
      items(c.args.map((a) => [a.term, a.description]));
      items(c.options.filter((o) => o.long !== '--help').map((o) => [o.flags, o.description]));
    }
  }
  for (const s of p.sections ?? []) {
    out.push(`.SH ${roff(s.title.toUpperCase())}`);
    for (const para of s.paragraphs ?? []) out.push('.PP', roff(para));
    items(s.items ?? []);
  }
  out.push('.SH SEE ALSO', p.seeAlso.map((s, i) => `.BR ${s.replace(/\((\d)\)$/, ' ($1)')}${i < p.seeAlso.length - 1 ? ' ,' : ''}`).join('\n'));
  return `${out.join('\n')}\n`;
}

/** Options whose value is a directory, a release of the target, or a file (the rest: free text, or their choices). */
const DIR_OPTIONS = ['-t', '--target', '-k', '--keyring', '--dir', '--ca-dir', '--out', '--tmp-dir', '--state-dir'];

/**
 * A bash completion script for `program` (zsh: `autoload -U +X bashcompinit && bashcompinit`
 * first; `fussy completion zsh` prints both). Completes commands, options and their choices;
 * directories for directory options; release names of the target (`-t`, else /opt/firmware) for
 * `rollback --to` and `verify`; with `remote`, the device's script names (`exec`, `get`, `rm`)
 * and job names (`cron rm|enable|disable|run|next`), asked of the device with the same remote
 * options (`fussy remote ... ls --json`, 3 s at most); files otherwise.
 */
export function bashCompletion(program: CommandDoc): string {
  const all = allCommands(program);
  const fn = `_${program.path[0]?.replaceAll('-', '_') ?? 'fussy'}_complete`;
  const cases = (f: (c: CommandDoc) => string): string => all.map((c) => `    "${c.path.join(' ')}") echo "${f(c)}" ;;`).join('\n');
  const valued = all.flatMap((c) => c.options.filter((o) => o.takesValue).flatMap((o) => [o.short, o.long].filter((n): n is string => n !== undefined).map((n) => `"${c.path.join(' ')} ${n}"`)));
  const choices = all.flatMap((c) => c.options.filter((o) => o.choices !== undefined).flatMap((o) => [o.short, o.long].filter((n): n is string => n !== undefined).map((n) => `    "${c.path.join(' ')} ${n}") ${fn}_reply < <(compgen -W "${o.choices?.join(' ') ?? ''}" -- "$cur"); return ;;`)));
  return `# bash completion for ${program.path[0]} (generated from its commands: fussy completion bash)
${fn}_subcommands() {
  case "$1" in
${cases((c) => c.commands.map((s) => s.path[s.path.length - 1]).join(' '))}
  esac
}
${fn}_options() {
  case "$1" in
${cases((c) => c.options.flatMap((o) => [o.short, o.long]).filter((n) => n !== undefined).join(' '))}
  esac
}
${fn}_add() {
  # Names read from the target or the device are data, never shell words: only plain names
  # (letters, digits, ".", "_", "-") that start with what is typed are offered (compgen -W would
  # expand a "$(...)" in them).
  local n
  while IFS= read -r n; do
    [[ "$n" =~ ^[A-Za-z0-9_][A-Za-z0-9._-]*$ && "$n" == "$cur"* ]] && COMPREPLY+=("$n")
  done
  return 0
}
${fn}_reply() {
  # Each line of its input one more reply (mapfile is bash's alone; zsh runs this through bashcompinit).
  local l
  while IFS= read -r l; do COMPREPLY+=("$l"); done
  return 0
}
${fn}_takes_value() {
  case "$1" in
    ${valued.join(' | ') || '"-"'}) return 0 ;;
  esac
  return 1
}
${fn}_releases() {
  local target=/opt/firmware i
  for ((i = 1; i < \${#COMP_WORDS[@]} - 1; i++)); do
    case "\${COMP_WORDS[i]}" in -t | --target) target="\${COMP_WORDS[i + 1]}" ;; esac
  done
  local d
  for d in "$target"/*/; do
    d="\${d%/}"; d="\${d##*/}"
    case "$d" in current | failsafe | '*') ;; *) echo "$d" ;; esac
  done
}
${fn}_device() {
  # the options given to remote, as typed; then "$1" (ls, or cron ls) as JSON, and the names in it
  local -a flags=() ; local i in=0 w
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    if ((in == 0)); then [[ "$w" == remote ]] && in=1; continue; fi
    case "$w" in
      # a path typed as ~/... is in COMP_WORDS as typed: expanded here, as the shell would
      --host | --port | --parallel | --cert | --key | --ca) flags+=("$w" "\${COMP_WORDS[i + 1]/#\\~/$HOME}"); ((i++)) ;;
      -*) flags+=("$w") ;;
      *) break ;;
    esac
  done
  timeout 3 ${program.path[0]} remote "\${flags[@]}" $1 --json 2>/dev/null | grep -o '"name":"[^"]*"' | cut -d'"' -f4
}
${fn}() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD - 1]}" path="${program.path[0]}" i w subs
  COMPREPLY=()
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    [[ "$w" == "--" ]] && { COMPREPLY=(); return; }
    subs=" $(${fn}_subcommands "$path") "
    [[ "$subs" == *" $w "* ]] && path="$path $w"
  done
  case "$path $prev" in
${choices.join('\n')}
  esac
  if ${fn}_takes_value "$path $prev"; then
      case "$prev" in
        ${DIR_OPTIONS.join(' | ')}) ${fn}_reply < <(compgen -d -- "$cur") ;;
        --to) ${fn}_add < <(${fn}_releases) ;;
        *) ${fn}_reply < <(compgen -f -- "$cur") ;;
      esac
      return
  fi
  if [[ "$cur" == -* ]]; then
    ${fn}_reply < <(compgen -W "$(${fn}_options "$path")" -- "$cur")
    return
  fi
  subs="$(${fn}_subcommands "$path")"
  if [[ -n "$subs" ]]; then
    ${fn}_reply < <(compgen -W "$subs" -- "$cur")
    return
  fi
  case "$path" in
${all.filter((c) => c.args[0]?.choices !== undefined).map((c) => `    "${c.path.join(' ')}") ${fn}_reply < <(compgen -W "${c.args[0]?.choices?.join(' ') ?? ''}" -- "$cur") ;;`).join('\n')}
    *" verify") ${fn}_add < <(${fn}_releases) ;;
    *" remote exec" | *" remote get" | *" remote rm") ${fn}_add < <(${fn}_device ls); ${fn}_reply < <(compgen -f -- "$cur") ;;
    *" remote cron rm" | *" remote cron enable" | *" remote cron disable" | *" remote cron run" | *" remote cron next") ${fn}_add < <(${fn}_device 'cron ls') ;;
    *) ${fn}_reply < <(compgen -f -- "$cur") ;;
  esac
}
complete -o filenames -F ${fn} ${program.path[0]}
`;
}
