#!/usr/bin/env bash
# Builds the workspace and runs every test: the unit tests and the end-to-end tests (real etcd,
# the real kube-apiserver binary, kubectl 1.33 and kube-rs as clients), then the end-to-end tests
# again on the embedded store (TEST_STORAGE=embedded). Exits non-zero if anything fails.
#
# Knobs: TEST_TIMEOUT (per pass, default 30m), NO_NEXTEST=1 (use plain `cargo test`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '+++ [%s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# System packages the tests need; `apt-get update` only when something is missing.
ensure_packages() {
  local missing=() pkg
  for pkg in etcd-server etcd-client protobuf-compiler libprotobuf-dev busybox-static; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  ((${#missing[@]})) || return 0
  log "installing ${missing[*]}"
  local sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq >/dev/null
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_packages
if [[ ! -x /usr/lib/google-cloud-sdk/bin/kubectl.1.33 ]]; then
  log "WARNING: /usr/lib/google-cloud-sdk/bin/kubectl.1.33 is missing; the kubectl tests will fail"
fi

runner=(cargo test --no-fail-fast)
if [[ -z ${NO_NEXTEST:-} ]] && cargo nextest --version >/dev/null 2>&1; then
  runner=(cargo nextest run --no-fail-fast --failure-output=final)
fi
timeout=${TEST_TIMEOUT:-30m}
export RUST_BACKTRACE=${RUST_BACKTRACE:-1}

log "building the workspace (debug)"
cargo build --workspace --bins --tests

failed=()
log "pass 1: all workspace tests (etcd backend for end-to-end tests) with ${runner[*]}"
if ! TEST_STORAGE=etcd timeout -k 30s "$timeout" "${runner[@]}" --workspace; then
  failed+=("workspace tests")
fi

log "pass 2: end-to-end tests on the embedded store"
if ! TEST_STORAGE=embedded timeout -k 30s "$timeout" "${runner[@]}" -p integration-tests; then
  failed+=("end-to-end tests with TEST_STORAGE=embedded")
fi

if ((${#failed[@]})); then
  log "FAILED: ${failed[*]}"
  exit 1
fi
log "all tests passed"
