"""Every candidate's latency on a board, next to its accuracy in the trade-off table."""

from __future__ import annotations

from rkbench.accuracy.evalset import EvalSet
from rkbench.accuracy.hybrid.candidates import Candidate
from rkbench.model.build import Say


def measure_on_board(candidates: list[Candidate], evalset: EvalSet, board, say: Say, backend: str = "auto") -> None:
    """Latency of each feasible candidate's model on a board's NPU. Hybrid models need the
    NPU: the simulator backend of a board without one rebuilds from the recipe and cannot
    run a hybrid build. Where the backend reports the runtime's own NPU time (rknnrt's
    npu_stats), it is kept too; where it does not, that column stays empty."""
    from rkbench.boards.connect import board_python
    from rkbench.results.stats import summarize
    from rkbench.run.plan import MeasureOptions
    from rkbench.run.session import run_on_board
    from rkbench_wire import ModelRef

    python = board_python(board.board, board.python)
    with board.open() as transport:
        for candidate in candidates:
            if not candidate.rknn or not candidate.feasible:
                continue
            say(f"measuring {candidate.label} on {board.board}")
            spec = MeasureOptions(backend=backend).spec(
                ModelRef(rknn=candidate.rknn), evalset.arrays, evalset.data_format, save_outputs=False
            )
            run = run_on_board(transport, spec, python=python).results[0]
            stats = summarize(run.samples_ns)
            candidate.board_p50_ms, candidate.board_p99_ms = stats.p50_ms, stats.p99_ms
            npu = run.result.npu_stats
            candidate.npu_p50_ms = npu.p50_ms if npu is not None else None
            memory = (run.result.memory or {}).get("npu") or {}
            candidate.npu_mem_mb = memory["dma_bytes"] / 2**20 if "dma_bytes" in memory else None
