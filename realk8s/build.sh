#!/usr/bin/env bash
# Build realk8s/bin/realk8s (`make realk8s`). Every failure is one line on stderr and a non-zero exit;
# the compiler's own output goes to realk8s/build.log. Go keeps its module and build caches in
# $(go env GOMODCACHE) and $(go env GOCACHE), so only the first build is slow.
set -uo pipefail
cd "$(dirname "$0")"
GO="${GO:-go}"
if ! command -v "$GO" >/dev/null 2>&1; then
  echo "realk8s: Go toolchain not found ('$GO' is not on PATH); install Go >= 1.26 to build the real control plane" >&2
  exit 1
fi
mkdir -p bin
start=$(date +%s)
echo "building realk8s/bin/realk8s with $("$GO" version | cut -d' ' -f3) (first build: several minutes; log in realk8s/build.log) ..."
if ! nice -n 10 "$GO" build -trimpath -buildvcs=false -ldflags "-s -w" -o bin/realk8s.tmp . >build.log 2>&1; then
  first=$(grep -m1 -E '\.go:[0-9]+|error|cannot|go: ' build.log | cut -c1-200)
  rm -f bin/realk8s.tmp
  echo "realk8s: go build failed: ${first:-see realk8s/build.log} (full log: realk8s/build.log)" >&2
  exit 1
fi
mv bin/realk8s.tmp bin/realk8s
echo "built realk8s/bin/realk8s ($(du -m bin/realk8s | cut -f1) MB) in $(( $(date +%s) - start )) s"
