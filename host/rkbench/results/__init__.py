"""What a run measured, kept and judged.

model.py  RunResult and its parts (latency stats, outputs, layers, telemetry, thresholds)
stats.py  latency summaries and verdicts (Mann-Whitney U + Hodges-Lehmann + minimum effect)
store.py  the SQLite results store (written as a run goes; history, baselines)
npu_profile.py  the runtime's per-layer profile (PERF_DETAIL) parsed, ranked, summed per op type
"""
