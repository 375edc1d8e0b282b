#!/bin/sh
# Writes a C++ initializer list {"name", R"(json)"}, ... of the template JSON files given,
# each named by its file name without .json (the build compiles rl/templates/*.json into
# rl/template_catalog.cpp this way, so the binary needs no data directory at run time).
set -eu
delim=rpt_template
for f in "$@"; do
    if grep -q ")$delim\"" "$f"; then echo "$f: contains the raw-string delimiter )$delim\"" >&2; exit 1; fi
    name=$(basename "$f" .json)
    printf '{"%s", R"%s(' "$name" "$delim"
    cat "$f"
    printf ')%s"},\n' "$delim"
done
