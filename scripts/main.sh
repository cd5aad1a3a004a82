#!/usr/bin/env bash
# The main job: install, build, and run a stress test of the balancer
# (50 simulated workers, 2000 tests over 5 s in bursts, workers joining,
# leaving and dying), writing results.json and charts of it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DALB_BUILD_TESTS=OFF -DALB_BUILD_BENCH=OFF
cmake --build build -j"$(nproc)" --target alb
./build/bin/alb stress --workers 50 --tests 2000 --duration 5 --burst \
  --dynamic --output results.json
./build/bin/alb visualize results.json --output-dir visualizations
