#!/bin/sh
# aikctl resolve on the in-tree profiles: exit codes, text and JSON output.
# usage: test_resolve_cli.sh AIKCTL  (AIK_SOURCE_ROOT set by meson)
set -u
aikctl=$1
src=${AIK_SOURCE_ROOT:-.}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0

check() { # name expected-rc command...
    name=$1 want=$2
    shift 2
    "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ "$rc" -ne "$want" ]; then
        echo "FAIL $name: exit $rc, want $want"; cat "$tmp/out" "$tmp/err"; fails=$((fails + 1))
    fi
}
expect() { # name file pattern
    if ! grep -q -- "$3" "$tmp/$2"; then
        echo "FAIL $1: no '$3' in $2"; cat "$tmp/out" "$tmp/err"; fails=$((fails + 1))
    fi
}

P="--profiles $src/profiles"
check id 0 "$aikctl" resolve lexicon.define $P
expect id out "aik-lexicon-define"
expect id out "plan: 2 module(s), 100.0 MiB, backends cpu,vulkan"
check range 0 "$aikctl" resolve "lexicon.example@^1.0" $P --explain
expect range out "chosen    aik-lexicon-example@1.0.0: provides lexicon.example 1.0.0 for the intent (^1.0)"
check text 0 "$aikctl" resolve what does ephemeral mean $P --no-wordnet
expect text out "capability: lexicon.define (free-text match"
check nomatch 1 "$aikctl" resolve "the weather in Paris tomorrow" $P --explain
expect nomatch err "no capability matches"
check memory 1 "$aikctl" resolve lexicon.define $P --memory 64M --explain
expect memory err "needs 96.0 MiB of memory, the budget is 64.0 MiB"
check backend 1 "$aikctl" resolve lexicon.define $P --backend npu
check latency 0 "$aikctl" resolve lexicon.define $P --latency-ms 50
check json 0 "$aikctl" resolve lexicon.synonyms $P --json
expect json out '"capability": "lexicon.synonyms"'
expect json out '"verdict": "chosen"'
check json-fail 1 "$aikctl" resolve lexicon.nothing $P --json
expect json-fail out '"error"'
check usage 2 "$aikctl" resolve
check bad-memory 2 "$aikctl" resolve lexicon.define --memory 12parsecs $P
mkdir "$tmp/p"
cp "$src/tests/capgraph/bad/wrong-type-intent.yaml" "$tmp/p/"
check bad-profile 1 "$aikctl" resolve lexicon.define --profiles "$tmp/p"
expect bad-profile err "wrong-type-intent.yaml:13:9: capabilities\[0\].intents\[2\]: expected a string, got a mapping"
[ "$fails" -eq 0 ] && echo "aikctl resolve: all checks passed"
[ "$fails" -eq 0 ]
