"""Hybrid quantization: keep the layers that need it in float, found by measurement.

search.py  the automatic search, manual --float, --cfg re-use, the vendor's proposal and
           auto_hybrid for comparison, build_from_cfg() for `run --hybrid-cfg`
cfg.py     the vendor's quantization.cfg format (read, write, check)
groups.py  repair groups: a layer with its fused activation and its producers
"""
