# Bash completion for corral: verbs, subverbs and their flags (cli/commands/*.cpp; each
# `corral VERB --help` lists the same). Installed by deploy/build.sh; or source it by hand:
#   source cli/completion/corral.bash
# Plain bash: it needs no bash-completion helpers.

_corral_global_opts="--nats --nats-creds --nats-ca --tenant --pool --version --help"
_corral_verbs="up run exec sandbox fs usage node token sweep help version"

# The flags of a verb ("sandbox create", ...).
_corral_flags() {
  case "$1" in
    up) echo "--data --port --gateway-port --max-sandboxes --runsc --help" ;;
    run) echo "--timeout --exec-timeout -t --tty --workdir --env --id --help" ;;
    exec) echo "-t --tty --timeout --workdir --env --id --help" ;;
    "sandbox create")
      echo "--name --timeout --idle-timeout --cpu --memory --cpu-request --memory-request --tag" \
           "--env --workdir --probe-cmd --probe-port --probe-interval --help" ;;
    "sandbox ls") echo "--all -a --name --tag --json --help" ;;
    "sandbox info") echo "--name --json --help" ;;
    "sandbox wait") echo "--name --timeout --ready --json --help" ;;
    "sandbox rm") echo "--name --help" ;;
    "sandbox tags") echo "--clear --help" ;;
    "sandbox logs") echo "--help" ;;
    "fs cat") echo "--max-bytes --help" ;;
    "fs write") echo "--append --help" ;;
    "fs mkdir") echo "-p --parents --help" ;;
    "fs rm") echo "-r --recursive --help" ;;
    "fs ls" | "fs stat") echo "--help" ;;
    usage) echo "--json --help" ;;
    "node ls") echo "--listen --json --help" ;;
    "token create" | "token revoke") echo "--tenant --data --tokens --help" ;;
    sweep)
      echo "--out --concurrency -j --direct --queue --isolation --batch --timeout" \
           "--output-limit --stall-timeout --help" ;;
  esac
}

# The subverbs of a group.
_corral_subverbs() {
  case "$1" in
    sandbox) echo "create ls info wait rm tags logs" ;;
    fs) echo "cat write ls stat mkdir rm" ;;
    node) echo "ls" ;;
    token) echo "create revoke" ;;
  esac
}

_corral() {
  local cur="${COMP_WORDS[COMP_CWORD]}"
  local prev=""
  ((COMP_CWORD > 0)) && prev="${COMP_WORDS[COMP_CWORD - 1]}"
  COMPREPLY=()

  # The global options (and their values) come before the verb.
  local i=1
  while ((i < COMP_CWORD)); do
    case "${COMP_WORDS[i]}" in
      --nats | --nats-creds | --nats-ca | --tenant | --pool) ((i += 2)) ;;
      -*) ((i += 1)) ;;
      *) break ;;
    esac
  done
  if ((i >= COMP_CWORD)); then
    case "$prev" in
      --nats-creds | --nats-ca) COMPREPLY=($(compgen -f -- "$cur")); return 0 ;;
      --nats | --tenant | --pool) return 0 ;;
    esac
    if [[ "$cur" == -* ]]; then
      COMPREPLY=($(compgen -W "$_corral_global_opts" -- "$cur"))
    else
      COMPREPLY=($(compgen -W "$_corral_verbs" -- "$cur"))
    fi
    return 0
  fi

  local verb="${COMP_WORDS[i]}"
  [[ "$verb" == sb ]] && verb=sandbox
  if [[ "$verb" == help ]]; then
    ((i + 1 == COMP_CWORD)) && COMPREPLY=($(compgen -W "${_corral_verbs% help version}" -- "$cur"))
    return 0
  fi
  local subs
  subs="$(_corral_subverbs "$verb")"
  local first_arg=$((i + 1))
  if [[ -n "$subs" ]]; then
    if ((i + 1 == COMP_CWORD)); then
      COMPREPLY=($(compgen -W "$subs --help" -- "$cur"))
      return 0
    fi
    verb="$verb ${COMP_WORDS[i + 1]}"
    first_arg=$((i + 2))
  fi

  # After "--": a command of the sandbox (or an entrypoint): nothing to offer from here.
  local j
  for ((j = first_arg; j < COMP_CWORD; j++)); do
    [[ "${COMP_WORDS[j]}" == -- ]] && return 0
  done

  case "$prev" in
    --out | --nats-creds | --nats-ca | --tokens | --runsc) COMPREPLY=($(compgen -f -- "$cur")); return 0 ;;
    --data) COMPREPLY=($(compgen -d -- "$cur")); return 0 ;;
    --isolation) COMPREPLY=($(compgen -W "fresh strict" -- "$cur")); return 0 ;;
    --name | --timeout | --exec-timeout | --idle-timeout | --cpu | --memory | --cpu-request | \
      --memory-request | --tag | --env | --workdir | --probe-cmd | --probe-port | \
      --probe-interval | --id | --max-bytes | --listen | --tenant | --concurrency | -j | \
      --batch | --output-limit | --stall-timeout | --port | --gateway-port | --max-sandboxes)
      return 0 ;;
  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$(_corral_flags "$verb")" -- "$cur"))
  elif [[ "$verb" == sweep ]]; then
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
  return 0
}

complete -F _corral corral
