"""rkbench: RKNN build, simulator analysis and board benchmarking."""

__version__ = "0.1.0"
