#!/usr/bin/env bash
# The bash completion of corral (cli/completion/corral.bash): completions of a few command
# lines, driven as bash drives them (COMP_WORDS, COMP_CWORD), and every verb and flag that
# `corral --help` and `corral VERB --help` name is one it offers.
# usage: cli_completion_test.sh COMPLETION_SCRIPT CORRAL_BINARY
set -uo pipefail
export LC_ALL=C
script=$1
corral=$2
# shellcheck source=/dev/null
source "$script"
failures=0

# complete WORD... : what _corral offers for the last word of `corral WORD...`.
complete_line() {
  COMP_WORDS=(corral "$@")
  COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
  COMPREPLY=()
  _corral
  printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' ' | sed 's/ $//'
}

expect() {
  local want=$1
  shift
  local got
  got=$(complete_line "$@")
  if [[ "$got" != "$want" ]]; then
    echo "FAIL: corral $* <TAB>: got '$got', want '$want'"
    failures=$((failures + 1))
  fi
}

expect "sandbox sweep" s
expect "create" sandbox c
expect "create" sb c
expect "logs ls" --tenant t sandbox l
expect "--id" run --id
expect "--idle-timeout" sandbox create --idl
expect "--json" sandbox ls --j
expect "strict" sweep p.jsonl --isolation s
expect "--nats --nats-ca --nats-creds" --na
expect "" exec sb-1 -- ls -
expect "cat" fs ca
expect "--max-bytes" fs cat --m
expect "--listen" node ls --l
expect "revoke" token r

# Every verb of `corral --help`, and every flag of each verb's --help, is offered.
verbs=$("$corral" --help | awk '/^commands:/ {on=1; next} on && /^  [a-z]/ {print $1 (($2 ~ /^[a-z]+$/) ? " " $2 : "")} on && /^$/ {on=0}')
if [[ -z "$verbs" ]]; then
  echo "FAIL: no commands in corral --help"
  failures=$((failures + 1))
fi
while IFS= read -r verb; do
  [[ -z "$verb" ]] && continue
  read -r -a words <<<"$verb"
  if [[ ${#words[@]} == 2 ]]; then
    offered=$(complete_line "${words[0]}" "")
    [[ " $offered " == *" ${words[1]} "* ]] || { echo "FAIL: corral ${words[0]} <TAB> lacks ${words[1]}"; failures=$((failures + 1)); }
  else
    offered=$(complete_line "")
    [[ " $offered " == *" ${words[0]} "* ]] || { echo "FAIL: corral <TAB> lacks ${words[0]}"; failures=$((failures + 1)); }
  fi
  help=$("$corral" $verb --help) || { echo "FAIL: corral $verb --help failed"; failures=$((failures + 1)); continue; }
  # The flags of the usage line (up to the first blank line) and of the option lines.
  flags=$( (printf '%s\n' "$help" | awk '/^$/ {exit} {print}'; printf '%s\n' "$help" | grep -E '^  -' | sed -E 's/^  (-[-a-z]+(, --[-a-z]+)?).*/\1/') |
    grep -oE -- '(^|[][ |(,])--?[a-z][-a-z]*' | sed -E 's/^[][ |(,]//' | sort -u)
  offered=" $(complete_line "${words[@]}" -) "
  for f in $flags; do
    [[ "$offered" == *" $f "* ]] || { echo "FAIL: corral $verb -<TAB> lacks $f"; failures=$((failures + 1)); }
  done
done <<<"$verbs"

if ((failures > 0)); then
  echo "$failures failures"
  exit 1
fi
echo "completion: all passed"
