#!/usr/bin/env bash
# Installs, builds everything (tests, benchmarks, examples) and runs every
# test, including the Prometheus integration test and the example programs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
# The dashboard type check's TypeScript and @grafana/schema, as locked.
if command -v npm >/dev/null 2>&1; then
  (cd tests/dashboards_ts && npm ci --no-audit --no-fund --loglevel=error)
  # junit2json, the JUnit consumer report_it reads --junit files with.
  (cd tests/junit_js && npm ci --no-audit --no-fund --loglevel=error)
fi
cmake -S . -B build -DALB_BUILD_TESTS=ON -DALB_BUILD_BENCH=ON
cmake --build build -j"$(nproc)"
ctest --test-dir build --output-on-failure -j"$(nproc)" --timeout 600
./build/examples/example_custom_script >/dev/null
./build/examples/example_coordinator_client >/dev/null
# The .deb: cpack, dpkg -i, the installed alb and units, dpkg -r (~30 s).
bash packaging/test_deb.sh build
echo "all tests passed"
