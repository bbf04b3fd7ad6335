"""Builds and measures hybrid candidates: one step 1 (reused), step 2 per candidate, the
evaluation set on the simulator against fp32. Everything goes through the content-addressed
cache, so repeating a search costs no build.

A candidate the toolkit crashes on, hangs on or refuses comes back as an infeasible
Candidate with the toolkit's own line, not as an exception: the search goes on. Candidates
of one round are built in parallel worker processes when cores are free.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from rkbench.accuracy.evalset import EvalSet, OutputAgreement, prepare_eval, summary_cos
from rkbench.accuracy.hybrid.candidates import Candidate
from rkbench.accuracy.hybrid.cfg import QuantizationCfg, read_cfg
from rkbench.accuracy.hybrid.dtypes import DtypeRules, log_text, read_rules, toolkit_line
from rkbench.accuracy.hybrid.groups import LayerGraph, read_layer_graph
from rkbench.accuracy.layers import LayerSummary, parse_error_analysis, rank, summarize
from rkbench.errors import DiskFullError, RkbenchError
from rkbench.model.build import BuildOptions, Prepared, Say
from rkbench.model.cache import build_key, file_sha256
from rkbench.model.dataset import Dataset, discard_txt
from rkbench.toolkit.worker import TOOLKIT_SCRIPT, run_job, toolkit_version

FLOATED = re.compile(r"Meet hybrid type, dtype: (\w+), tensor: (\S+)")


@dataclass
class Step1:
    model: Path
    data: Path
    cfg: QuantizationCfg
    graph: LayerGraph
    rules: DtypeRules


def free_cores(interval: float = 0.3) -> float:
    """Cores idle right now (from /proc/stat over `interval`), not the load average, which
    still counts the builds we just finished."""

    def sample():
        with open("/proc/stat") as handle:
            values = [int(v) for v in handle.readline().split()[1:]]
        return values[3] + values[4], sum(values)

    try:
        idle0, total0 = sample()
        time.sleep(interval)
        idle1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return 1.0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    busy = total1 - total0
    return cores * (idle1 - idle0) / busy if busy > 0 else float(cores)


def parallel_jobs(requested: int | None) -> int:
    if requested:
        return requested
    return max(1, min(4, int(free_cores() + 0.25)))


class HybridSession:
    """One model, calibration set and evaluation set; counts the builds it really runs."""

    def __init__(
        self,
        prepared: Prepared,
        calibration: Dataset,
        evaluation: Dataset,
        options: BuildOptions,
        say: Say,
        max_eval: int = 16,
        jobs: int | None = 1,
    ):
        self.prepared = prepared
        self.calibration = calibration
        self.options = options
        self.say = say
        self.cache = options.cache
        self.version = toolkit_version(options.worker.python)
        self.workdir = self.cache.workdir("hybrid")
        self.evaluation = evaluation.subset(range(min(max_eval, len(evaluation.samples))))
        self.evalset: EvalSet = prepare_eval(prepared, self.evaluation.samples, self.workdir)
        self.calibration_txt = calibration.write_txt(self.workdir / "calibration.txt")
        self.recipe = prepared.config.recipe(self.calibration_txt)
        self.builds = 0
        self.jobs = jobs or 1
        self.stopping = False  # set on Ctrl-C: the builds killed then are not failures to cache

    def close(self) -> None:
        discard_txt(self.calibration_txt)  # and the links it may name (paths with spaces)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _key(self, extra: dict) -> str:
        return build_key(self.prepared.model_sha256, self.calibration.digest, dict(self.recipe, **extra), self.version)

    def _what(self, label: str) -> str:
        return f"{self.prepared.config.model} ({label})"

    # -- step 1 ---------------------------------------------------------------------------
    def step1(self, proposal: bool = False) -> Step1:
        key = self._key({"hybrid_step1": {"proposal": proposal}})
        entry = self.cache.entry(key)
        manifest = entry / "step1.json"
        if not manifest.is_file():
            self.say("hybrid step 1" + (" with the vendor's proposal" if proposal else ""))
            request = {
                "job": "hybrid_step1",
                "recipe": self.recipe,
                "step1": {"proposal": proposal, "proposal_dataset_size": min(4, len(self.calibration.samples))},
            }
            workdir = self.cache.workdir("hybrid-job")
            result = run_job(
                request,
                workdir,
                self.options.worker,
                on_step=lambda step, detail: None,
                what=self._what("hybrid step 1"),
            )
            files = {k: Path(result[k]).name for k in ("model", "data", "cfg")}
            entry = self.cache.keep(key, workdir, {"step1.json": files})
        files = json.loads(manifest.read_text())
        cfg = read_cfg(entry / files["cfg"])
        graph = read_layer_graph(entry / files["model"], cfg.tensors)
        return Step1(entry / files["model"], entry / files["data"], cfg, graph, read_rules(graph, cfg.parameters))

    # -- candidates -----------------------------------------------------------------------
    def evaluate(self, step1: Step1, layers: dict[str, str], label: str) -> Candidate:
        return self.evaluate_many(step1, [(layers, label)])[0]

    def evaluate_many(self, step1: Step1, wanted: list[tuple[dict[str, str], str]]) -> list[Candidate]:
        """Step 2 + the evaluation set for each (layers, label); cached ones cost nothing, the
        rest run in up to `jobs` worker processes at once. Failures are candidates too."""
        results: list[Candidate | None] = []
        pending = []
        for layers, label in wanted:
            key = self._key({"hybrid": dict(sorted(layers.items()))})
            cached = self._cached(key, label, layers)
            results.append(cached)
            if cached is None:
                self.builds += 1
                kinds = sorted(set(layers.values()))
                kind = "float" if kinds == ["float16"] else "/".join(kinds) or "no"
                self.say(f"build {self.builds}: {label}: {len(layers)} {kind} layer(s)")
                pending.append((len(results) - 1, key, layers, label))
        if not pending:
            return results
        pool = ThreadPoolExecutor(max_workers=min(self.jobs, len(pending)))
        try:
            futures = [
                (index, pool.submit(self._build, step1, key, layers, label)) for index, key, layers, label in pending
            ]
            for index, future in futures:
                results[index] = future.result()
        except BaseException:
            self.stopping = True
            _stop_toolkit_jobs()  # Ctrl-C: the workers run in their own sessions
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return results

    def is_cached(self, layers: dict[str, str]) -> bool:
        entry = self.cache.entry(self._key({"hybrid": dict(sorted(layers.items()))}))
        return (entry / "failure.json").is_file() or (
            self._eval_file(entry).is_file() and (entry / "model.rknn").is_file()
        )

    def _build(self, step1: Step1, key: str, layers: dict[str, str], label: str) -> Candidate:
        workdir = self.cache.workdir("hybrid-job")
        cfg_path = workdir / "hybrid.quantization.cfg"
        cfg_path.write_text(step1.cfg.with_custom(layers).text())
        (workdir / "outputs").mkdir()
        request = {
            "job": "hybrid_step2",
            "step2": {"model": str(step1.model), "data": str(step1.data), "cfg": str(cfg_path)},
            "export_path": str(workdir / "model.rknn"),
            "evaluate": self.evalset.request(workdir / "outputs"),
        }
        started = time.time()
        try:
            result = run_job(request, workdir, self.options.worker, what=self._what(label))
        except DiskFullError:
            raise
        except RkbenchError as err:
            return self._failure(key, workdir, label, layers, step1, str(err))
        candidate = self._record(key, workdir, result, label, layers, (started, time.time()))
        if not candidate.feasible:
            candidate.failure = "outputs not finite (NaN/inf): a float16 overflow, most likely"
        return candidate

    def _failure(self, key: str, workdir: Path, label: str, layers: dict, step1: Step1, message: str) -> Candidate:
        text = log_text(workdir)
        line = toolkit_line(text)
        reason = message.split("; its log:")[0].split(" (full log:")[0]
        if line and line not in reason:
            reason += f"; the toolkit said: {line}"
        candidate = Candidate.failed(label, layers, reason)
        if self.stopping:
            return candidate
        for sentence in step1.rules.learn(text, layers, step1.graph):
            self.say(f"  learned: {sentence}")
        self.say(f"  -> failed: {reason}")
        if "hung in step" not in message:  # a hang may not repeat; a crash or refusal does
            shutil.rmtree(workdir / "outputs", ignore_errors=True)
            for name in ("model.rknn",):
                (workdir / name).unlink(missing_ok=True)
            self.cache.keep(key, workdir, {"failure.json": {"reason": reason, "layers": layers}})
        return candidate

    def vendor_auto_hybrid(self) -> Candidate:
        """The toolkit's own `build(auto_hybrid=True)`, on the same data."""
        key = self._key({"auto_hybrid": True})
        cached = self._cached(key, "vendor auto_hybrid", {})
        if cached is not None:
            return cached
        self.builds += 1
        self.say(f"build {self.builds}: vendor auto_hybrid=True")
        workdir = self.cache.workdir("hybrid-job")
        (workdir / "outputs").mkdir()
        request = {
            "job": "auto_hybrid",
            "recipe": self.recipe,
            "export_path": str(workdir / "model.rknn"),
            "evaluate": self.evalset.request(workdir / "outputs"),
        }
        try:
            result = run_job(request, workdir, self.options.worker, what=self._what("auto_hybrid"))
        except DiskFullError:
            raise
        except RkbenchError as err:  # the vendor's build failing is a result of the comparison
            return Candidate.failed("vendor auto_hybrid", {}, str(err))
        return self._record(key, workdir, result, "vendor auto_hybrid", {})

    def _candidate(self, label: str, layers: dict, floated: list[str], result: dict) -> Candidate:
        outputs = self.evalset.agreement(result["outputs"])
        cos_mean, cos_min = summary_cos(outputs)
        tops = [o.top1_agreement for o in outputs if o.top1_agreement is not None]
        return Candidate(
            label,
            layers,
            floated,
            result["rknn_bytes"],
            cos_mean,
            cos_min,
            tops[0] if tops else None,
            outputs,
            cached=False,
        )

    def _eval_file(self, entry: Path) -> Path:
        return entry / f"eval-{self.evalset.digest[:16]}.json"

    def _cached(self, key: str, label: str, layers: dict) -> Candidate | None:
        entry = self.cache.entry(key)
        failure = entry / "failure.json"
        if failure.is_file():
            candidate = Candidate.failed(label, layers, json.loads(failure.read_text())["reason"])
            candidate.cached = True
            return candidate
        path = self._eval_file(entry)
        if not path.is_file() or not (entry / "model.rknn").is_file():
            return None
        data = json.loads(path.read_text())
        data["outputs"] = [OutputAgreement(**o) for o in data["outputs"]]
        data = {k: v for k, v in data.items() if k in Candidate.__dataclass_fields__}
        return Candidate(**dict(data, label=label, layers=layers, cached=True, rknn=str(entry / "model.rknn"), key=key))

    def _record(
        self, key: str, workdir: Path, result: dict, label: str, layers: dict, wall: tuple[float, float] | None = None
    ) -> Candidate:
        log = (workdir / "toolkit.log").read_text(errors="replace")
        floated = sorted({name for _, name in FLOATED.findall(log) if "__" not in name})
        candidate = self._candidate(label, layers, floated, result)
        record = {
            "toolkit_version": result["toolkit_version"],
            "recipe": self.recipe,
            "hybrid_layers": layers,
            "label": label,
            "wall_time": wall,
            "rknn": {"bytes": result["rknn_bytes"], "sha256": file_sha256(workdir / "model.rknn")},
        }
        evaluation = {
            k: v
            for k, v in candidate.to_dict().items()
            if k in ("float_tensors", "rknn_bytes", "cos_mean", "cos_min", "top1", "outputs")
        }
        entry = self.cache.keep(
            key, workdir, {"build.json": record, self._eval_file(workdir).name: evaluation}, drop=("outputs",)
        )
        candidate.rknn, candidate.key = str(entry / "model.rknn"), key
        self.say(
            f"  -> {label}: cos mean {candidate.cos_mean:.5f} min {candidate.cos_min:.5f}, {candidate.rknn_bytes} bytes"
        )
        return candidate

    # -- the analysis that ranks layers ---------------------------------------------------
    def analysis(self, samples: int = 4) -> tuple[list[LayerSummary], Candidate]:
        """Per-layer errors of the int8 model on evaluation samples; the same build gives the
        int8 baseline. The int8 baseline failing to build is the one failure that ends a search."""
        key = self._key({"hybrid_analysis": samples})
        entry = self.cache.entry(key)
        saved = entry / f"analysis-{self.evalset.digest[:16]}.json"
        built = not saved.is_file()
        if built:
            self.builds += 1
            self.say(f"build {self.builds}: int8 baseline with per-layer analysis")
            workdir = self.cache.workdir("hybrid-job")
            (workdir / "outputs").mkdir()
            picked = self.evaluation.pick(samples)
            request = {
                "job": "analyze",
                "recipe": self.recipe,
                "export_path": str(workdir / "model.rknn"),
                "analysis": {
                    "samples": [[str(f) for f in s] for s in picked],
                    "output_dir": str(workdir / "outputs"),
                    "keep_dumps": False,
                },
                "evaluate": self.evalset.request(workdir / "outputs"),
            }
            result = run_job(request, workdir, self.options.worker, what=self._what("analysis"))
            layers = summarize([parse_error_analysis(Path(p).read_text()) for p in result["reports"]])
            baseline = self._candidate("int8", {}, [], result)
            entry = self.cache.keep(
                key,
                workdir,
                {saved.name: {"layers": [asdict(layer) for layer in layers], "baseline": baseline.to_dict()}},
                drop=("outputs",),
            )
        data = json.loads(saved.read_text())
        layers = [LayerSummary(**dict(layer, markers=tuple(layer["markers"]))) for layer in data["layers"]]
        base = data["baseline"]
        base["outputs"] = [OutputAgreement(**o) for o in base["outputs"]]
        base = {
            k: v
            for k, v in base.items()
            if k in Candidate.__dataclass_fields__
            and k not in ("board_p50_ms", "board_p99_ms", "npu_p50_ms", "npu_mem_mb", "key")
        }
        baseline = Candidate(**dict(base, cached=not built, rknn=str(entry / "model.rknn")))
        self.say(f"  -> int8: cos mean {baseline.cos_mean:.5f} min {baseline.cos_min:.5f}")
        return layers, baseline

    def ranked_groups(self, step1: Step1, samples: int = 4) -> tuple[list[list[str]], Candidate]:
        """Repair groups, worst layer first, then every other eligible tensor (by its fused
        unit, in graph order): the whole list is "all layers"."""
        layers, baseline = self.analysis(samples)
        eligible = set(step1.rules.eligible)
        groups: list[list[str]] = []
        seen: set[str] = set()

        def add(tensors):
            new = [t for t in tensors if t not in seen and t in eligible]
            if new:
                groups.append(new)
                seen.update(new)

        for layer in rank(layers):
            if layer.single_loss <= 1e-6 and not layer.markers:
                break
            add(step1.graph.repair_group(layer.tensor))
        for tensor in step1.rules.eligible:
            add(step1.graph.unit(tensor))
        return groups, baseline


def _stop_toolkit_jobs() -> None:
    """Kill the toolkit workers this process started (each leads its own process group)."""
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if parent != me or str(TOOLKIT_SCRIPT) not in (entry / "cmdline").read_text():
                continue
            os.killpg(int(entry.name), signal.SIGKILL)
        except (OSError, ValueError, IndexError):
            continue
