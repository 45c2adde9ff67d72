#!/usr/bin/env bash
# Regenerates src/gen from proto/ and fails when the committed code differs (etcd's
# verify_genproto.sh): generated code must always match its .proto source.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"
buf generate
if [ -n "$(git status --porcelain -- src/gen)" ]; then
  echo "src/gen is stale: run 'npm run gen' and commit the result" >&2
  git status --porcelain -- src/gen >&2
  git diff --stat -- src/gen >&2
  exit 1
fi
echo "src/gen matches proto/"
