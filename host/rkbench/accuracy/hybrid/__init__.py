"""Hybrid quantization: keep the layers that need it in float16 or int16, found by measurement.

search.py      the automatic search, manual --float / --cfg checks, the artifacts it writes,
               build_from_cfg() for `run --hybrid-cfg`
session.py     builds and measures candidates (one step 1, step 2 per candidate, in parallel
               workers); a failed build is an infeasible candidate, not an exception
candidates.py  Candidate and HybridRecord (what hybrid.json holds)
dtypes.py      which dtype an entry can take: rules from step 1, lessons from failed builds
groups.py      repair groups: a layer with its fused activation and its producers
cfg.py         the vendor's quantization.cfg format (read, write, check)
board.py       every candidate's latency on a board
"""
