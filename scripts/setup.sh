#!/usr/bin/env bash
# Installs every Debian 12 package qsl needs (idempotent; as root or through sudo) and the npm
# test clients from the committed lock file. Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  # build
  build-essential cmake ninja-build ccache pkg-config git
  # libraries
  libabsl-dev libboost-dev nlohmann-json3-dev libsentencepiece-dev libspdlog-dev libfmt-dev
  libcli11-dev libopenblas-dev libgrpc++-dev libprotobuf-dev protobuf-compiler
  protobuf-compiler-grpc prometheus-cpp-dev libxrt-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev curl prometheus yamllint
  # deploy tests: Go and Debian's sprig build the offline Helm renderer (Helm is not in Debian 12)
  golang-go golang-github-masterminds-sprig-dev golang-github-ghodss-yaml-dev
  # rtl
  verilator yosys iverilog
  # plots
  python3 python3-matplotlib
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Tools that may come from elsewhere (e.g. Node.js from NodeSource, kubectl from the Cloud SDK):
# install Debian's package only when the command is absent.
for pair in node:nodejs npm:npm kubectl:kubernetes-client; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm test tools, each pinned by its package-lock.json: tests/clients (openai SDK, grpc-js) and
# tests/deploy (Kubernetes schemas, PromQL parser, Dockerfile linter).
for dir in tests/clients tests/deploy; do
  if [ -f "$dir/package-lock.json" ]; then
    if [ ! -d "$dir/node_modules" ] ||
       [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
      (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    fi
  fi
done
