"""Every candidate's latency on a board, next to its accuracy in the trade-off table."""

from __future__ import annotations

from rkbench.accuracy.evalset import EvalSet
from rkbench.accuracy.hybrid.candidates import Candidate
from rkbench.model.build import Say


def measure_on_board(candidates: list[Candidate], evalset: EvalSet, board, say: Say,
                     min_seconds: float = 2.0, backend: str = "rknnlite") -> None:
    """Latency of each feasible candidate's model on a board's NPU. Hybrid models need the
    NPU: the simulator backend of a board without one rebuilds from the recipe and cannot
    run a hybrid build. Where the backend reports the runtime's own NPU time (npu_stats),
    it is kept too."""
    from rkbench.results.stats import summarize
    from rkbench.run.session import board_python, run_on_board

    python = board_python(board.board, board.python)
    with board.open() as transport:
        for candidate in candidates:
            if not candidate.rknn or not candidate.feasible:
                continue
            say(f"measuring {candidate.label} on {board.board}")
            spec = {"model": {"rknn": candidate.rknn}, "inputs": evalset.arrays,
                    "data_format": evalset.data_format, "backend": backend, "warmup": 5,
                    "min_runs": 50, "min_seconds": min_seconds, "save_outputs": False}
            outcome = run_on_board(transport, spec, python=python)
            run = outcome.results[0]
            stats = summarize(run.samples_ns)
            candidate.board_p50_ms, candidate.board_p99_ms = stats.p50_ms, stats.p99_ms
            npu = getattr(run.result, "npu_stats", None)
            candidate.npu_p50_ms = npu.p50_ms if npu is not None else None
