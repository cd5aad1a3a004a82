#!/usr/bin/env python3
"""Writes the sample result files used by tests/visualize_test.cpp.

Deterministic (fixed seed); re-run after changing the formats:
    python3 tests/data/visualize/make_samples.py
"""
import json
import math
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
rng = random.Random(7)


def dump(name, obj, raw=None, indent=1):
    path = os.path.join(HERE, name)
    with open(path, "w") as f:
        if raw is not None:
            f.write(raw)
        else:
            json.dump(obj, f, indent=indent)
            f.write("\n")


def metrics(total=100, lat=0.25, thr=15.5, workers=20, util=0.85):
    failed = max(0, int(total * 0.02))
    return {
        "total_tests": total, "success_rate": 100.0 * (total - failed) / total if total else 0.0,
        "avg_latency": lat, "max_latency": lat * 4.8, "min_latency": lat / 5,
        "p50_latency": lat * 0.8, "p95_latency": lat * 2.6, "p99_latency": lat * 3.9,
        "peak_throughput": thr * 2.3, "avg_throughput": thr,
        "worker_assignment_stddev": 2.5, "worker_assignment_range": 8,
        "worker_utilization": util, "avg_scheduling_attempts": 1.2,
        "final_worker_count": workers, "pending_tests": 0, "assigned_tests": total,
        "completed_tests": total - failed, "failed_tests": failed,
        "retried_tests": min(1, total), "requeued_tests": 0, "migrated_tests": min(3, total),
        "makespan": 61.2,
    }


def config(**kw):
    c = {"workers": 20, "tests": 100, "duration": 60, "burst_mode": False,
         "dynamic_workers": True, "strategy": "least_loaded", "seed": 1,
         "timestamp": "2026-11-27T22:00:00.123456"}
    c.update(kw)
    return c


def stress_series(n=61, spikes=()):
    thr, lat, queue, workers = [], [], [], []
    w = 20
    for i in range(n):
        t = float(i)
        boost = any(a <= t <= b for a, b in spikes)
        v = 15 + 4 * math.sin(i / 6) + rng.uniform(-2, 2) + (30 if boost else 0)
        thr.append([t, round(max(v, 0), 3)])
        l = 0.2 + 0.05 * math.sin(i / 9) + rng.uniform(0, 0.05) + (0.6 if boost else 0)
        lat.append([t, round(l, 4)])
        q = max(0, int(10 + 8 * math.sin(i / 5) + (60 if boost else 0)))
        queue.append([t, q])
        if i in (20, 40):
            w += 2
        workers.append([t, w])
    return {"throughput": thr, "latency": lat, "queue_depth": queue, "workers": workers}


# stress
dump("stress.json", {"type": "stress", "configuration": config(),
                     "metrics": metrics(), "time_series": stress_series(),
                     "extra_key": {"ignored": True}})
# The original's shape: no "type", only throughput and latency series, and a
# NaN written by Python's json module.
orig = {"configuration": config(dynamic_workers=False),
        "metrics": metrics(), "time_series": stress_series()}
del orig["time_series"]["queue_depth"]
del orig["time_series"]["workers"]
raw = json.dumps(orig, indent=1).replace('"avg_scheduling_attempts": 1.2',
                                         '"avg_scheduling_attempts": NaN')
dump("stress_original.json", None, raw)
dump("stress_empty.json", {"type": "stress", "configuration": config(tests=0),
                           "metrics": {"total_tests": 0, "success_rate": 0.0},
                           "time_series": {"throughput": [], "latency": [],
                                           "queue_depth": [], "workers": []}})
dump("stress_single.json", {"type": "stress",
                            "configuration": config(workers=1, tests=1, duration=1),
                            "metrics": metrics(total=1, workers=1, thr=1.0, util=1.0),
                            "time_series": {"throughput": [[0.5, 1.0]],
                                            "latency": [[0.5, 0.12]],
                                            "queue_depth": [[0.5, 0]],
                                            "workers": [[0.5, 1]]}})

# spike
spk = [(10.0, 15.0), (35.0, 38.0)]
spike = {"type": "spike", "configuration": config(workers=10, tests=1000),
         "metrics": dict(metrics(total=1000, thr=25.0, workers=16),
                         initial_workers=10, final_workers=16),
         "spikes": [{"start": 10.0, "end": 15.0, "tests": 500},
                    {"start": 35.0, "end": 38.0, "tests": 250}],
         "time_series": stress_series(spikes=spk)}
dump("spike.json", spike)
detect = {"type": "spike", "configuration": config(workers=10, tests=800),
          "metrics": metrics(total=800, thr=22.0),
          "initial_workers": 10, "final_workers": 14,
          "time_series": stress_series(spikes=[(20.0, 24.0)])}
dump("spike_detect.json", detect)
dump("spike_empty.json", {"type": "spike", "configuration": config(),
                          "metrics": {}, "time_series": {}})
dump("spike_single.json", {"type": "spike", "configuration": config(workers=1),
                           "metrics": metrics(total=1, workers=1),
                           "spikes": [{"start": 0.0, "end": 0.0, "tests": 1}],
                           "time_series": {"throughput": [[0.0, 1.0]],
                                           "latency": [[0.0, 0.3]]}})

# benchmark
strategies = ["round_robin", "weighted_round_robin", "least_loaded",
              "performance_based", "priority_based", "affinity_based",
              "adaptive", "power_of_two", "best_fit"]
quality = {s: 0.7 + 0.03 * i for i, s in enumerate(strategies)}
results = []
for w in (5, 10, 20, 50):
    for n in (20, 100, 500):
        for s in strategies:
            q = quality[s] * rng.uniform(0.95, 1.05)
            util = min(0.99, q * min(1.0, n / (w * 4.0)) + 0.05)
            lower = n * 0.6 / w
            makespan = lower / q
            thr = n / makespan
            lat = 0.05 + 0.8 * n / (w * 100.0) / q
            m = metrics(total=n, lat=lat, thr=thr, workers=w, util=util)
            m.update(makespan=round(makespan, 3), lower_bound=round(lower, 3),
                     utilization_stddev=round(rng.uniform(0.02, 0.2), 3))
            results.append({"workers": w, "tests": n, "strategy": s, "metrics": m})
dump("benchmark.json", {"type": "benchmark",
                        "configuration": {"full": True, "seed": 1,
                                          "timestamp": "2026-11-27T22:00:00"},
                        "results": results}, indent=None)
# A bare list, four strategies, one test count: latency scales with workers.
dump("benchmark_list.json", [r for r in results
                             if r["tests"] == 100 and r["strategy"] in strategies[:4]])
dump("benchmark_single.json", {"type": "benchmark", "configuration": {},
                               "results": [{"workers": 1, "tests": 10,
                                            "strategy": "round_robin",
                                            "metrics": metrics(total=10, workers=1)}]})
dump("benchmark_empty.json", {"type": "benchmark", "configuration": {}, "results": []})

# bad inputs
dump("malformed.json", None, '{"type": "stress", "metrics": {"total_tests": 10,\n')
dump("no_metrics.json", {"configuration": config(), "time_series": {}})
dump("bad_entry.json", {"type": "benchmark",
                        "results": [{"workers": 5, "tests": 10, "metrics": {}}]})

# A benchmark whose grid has holes, as a quick `alb benchmark` run has: every
# worker count ran 20, 100 and 500 tests except 30 and 50 workers (100 only),
# and adaptive never ran 30 workers. Throughput grows with the test count, so
# averaging test counts per worker count would invent a fall at 30 and 50.
# Extra fields ("bound", "turnaround") must not disturb reading.
holes = []
for w in (5, 10, 20, 30, 50):
    for n in ((100,) if w >= 30 else (20, 100, 500)):
        for s in ("round_robin", "least_loaded", "adaptive"):
            if s == "adaptive" and w == 30:
                continue
            q = {"round_robin": 0.7, "least_loaded": 0.8, "adaptive": 0.9}[s]
            makespan = round((n * 0.6 / w + 3.0) / q, 3)
            thr = n / makespan
            lat = 0.05 + 0.8 * n / (w * 100.0) / q
            util = min(0.99, q * min(1.0, n / (w * 4.0)) + 0.05)
            m = metrics(total=n, lat=lat, thr=thr, workers=w, util=util)
            m.update(makespan=makespan, lower_bound=round(n * 0.6 / w, 3),
                     bound={"makespan": round(n * 0.6 / w, 3)},
                     turnaround=round(lat * 2, 3))
            holes.append({"workers": w, "tests": n, "strategy": s, "metrics": m})
dump("benchmark_holes.json", {"type": "benchmark", "configuration": {"seed": 3},
                              "results": holes}, indent=None)
