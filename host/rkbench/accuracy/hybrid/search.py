"""Hybrid quantization: which layers to keep in float, found by measurement.

Every candidate is built by hybrid step 2 from ONE step-1 result (reused, and cached),
then run on the simulator over an evaluation set kept apart from the calibration set and
compared with the fp32 model. Candidates, step-1 results and evaluations all go through
the content-addressed cache, so repeating a search costs no build.
"""

from __future__ import annotations

import difflib
import json
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rkbench.accuracy.evalset import EvalSet, OutputAgreement, prepare_eval, summary_cos
from rkbench.accuracy.hybrid.cfg import ProposalEntry, QuantizationCfg, read_cfg
from rkbench.accuracy.hybrid.groups import LayerGraph, read_layer_graph
from rkbench.accuracy.layers import LayerSummary, parse_error_analysis, rank, summarize
from rkbench.errors import TargetNotReached, UsageError
from rkbench.model.build import BuildOptions, Prepared, Say
from rkbench.model.cache import build_key, file_sha256
from rkbench.model.dataset import Dataset, discard_txt
from rkbench.toolkit.worker import run_job, toolkit_version

FLOATED = re.compile(r"Meet hybrid type, dtype: (\w+), tensor: (\S+)")


@dataclass
class Candidate:
    label: str
    layers: dict[str, str]  # custom_quantize_layers entries (tensor -> dtype)
    float_tensors: list[str]  # what the built model reports it keeps in float ("Meet hybrid type")
    rknn_bytes: int
    cos_mean: float
    cos_min: float
    top1: float | None
    outputs: list[OutputAgreement]
    cached: bool
    rknn: str | None = None
    meets_target: bool | None = None
    board_p50_ms: float | None = None  # measured on a board (rknnlite), when one is given
    board_p99_ms: float | None = None
    key: str | None = None  # its build-cache key

    def to_dict(self) -> dict:
        data = asdict(self)
        data["outputs"] = [asdict(o) for o in self.outputs]
        return data


@dataclass
class Step1:
    model: Path
    data: Path
    cfg: QuantizationCfg
    graph: LayerGraph


@dataclass
class HybridRecord:
    mode: str
    target_cos: float | None
    calibration: dict
    evaluation: dict
    builds: int = 0
    candidates: list[Candidate] = field(default_factory=list)
    chosen: Candidate | None = None
    vendor: list[Candidate] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    added: dict[str, list[str]] = field(default_factory=dict)  # user name -> partners we added
    vendor_builds: int = 0
    proposal: list[ProposalEntry] = field(default_factory=list)  # the vendor's, with running cos
    proposal_baseline: float | None = None

    def to_dict(self) -> dict:
        return {
            "mode": self.mode,
            "target_cos": self.target_cos,
            "builds": self.builds,
            "calibration": self.calibration,
            "evaluation": self.evaluation,
            "candidates": [c.to_dict() for c in self.candidates],
            "chosen": self.chosen.to_dict() if self.chosen else None,
            "vendor": [c.to_dict() for c in self.vendor],
            "vendor_builds": self.vendor_builds,
            "added_partners": self.added,
            "notes": self.notes,
            "proposal": {"int8_cos": self.proposal_baseline, "entries": [asdict(e) for e in self.proposal]},
        }


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

    def close(self) -> None:
        discard_txt(self.calibration_txt)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _key(self, extra: dict) -> str:
        return build_key(self.prepared.model_sha256, self.calibration.digest, dict(self.recipe, **extra), self.version)

    def _job(self, request: dict, label: str) -> tuple[dict, Path]:
        workdir = self.cache.workdir("hybrid-job")
        result = run_job(
            request,
            workdir,
            self.options.worker,
            on_step=lambda step, detail: None,
            what=f"{self.prepared.config.model} ({label})",
        )
        return result, workdir

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
            result, workdir = self._job(request, "hybrid step 1")
            files = {k: Path(result[k]).name for k in ("model", "data", "cfg")}
            (workdir / "step1.json").write_text(json.dumps(files))
            (workdir / "request.json").unlink(missing_ok=True)
            entry = self.cache.store(key, workdir)
        files = json.loads(manifest.read_text())
        cfg = read_cfg(entry / files["cfg"])
        graph = read_layer_graph(entry / files["model"], cfg.tensors)
        return Step1(entry / files["model"], entry / files["data"], cfg, graph)

    # -- candidates -----------------------------------------------------------------------
    def evaluate(self, step1: Step1, layers: dict[str, str], label: str) -> Candidate:
        """Step 2 with these float layers, then the evaluation set on the simulator."""
        key = self._key({"hybrid": dict(sorted(layers.items()))})
        cached = self._cached(key, label, layers)
        if cached is not None:
            return cached
        self.builds += 1
        self.say(f"build {self.builds}: {label}: {len(layers)} float layer(s)")
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
        result = run_job(request, workdir, self.options.worker, what=f"{self.prepared.config.model} ({label})")
        return self._record(key, workdir, result, label, layers)

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
        result = run_job(request, workdir, self.options.worker, what=f"{self.prepared.config.model} (auto_hybrid)")
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
        path = self._eval_file(entry)
        if not path.is_file() or not (entry / "model.rknn").is_file():
            return None
        data = json.loads(path.read_text())
        data["outputs"] = [OutputAgreement(**o) for o in data["outputs"]]
        return Candidate(**dict(data, label=label, layers=layers, cached=True, rknn=str(entry / "model.rknn"), key=key))

    def _record(self, key: str, workdir: Path, result: dict, label: str, layers: dict) -> Candidate:
        log = (workdir / "toolkit.log").read_text(errors="replace")
        floated = sorted({name for _, name in FLOATED.findall(log) if "__" not in name})
        candidate = self._candidate(label, layers, floated, result)
        shutil.rmtree(workdir / "outputs", ignore_errors=True)
        (workdir / "request.json").unlink(missing_ok=True)
        record = {
            "toolkit_version": result["toolkit_version"],
            "recipe": self.recipe,
            "hybrid_layers": layers,
            "label": label,
            "rknn": {"bytes": result["rknn_bytes"], "sha256": file_sha256(workdir / "model.rknn")},
        }
        (workdir / "build.json").write_text(json.dumps(record, indent=2))
        data = candidate.to_dict()
        for name in ("label", "layers", "cached", "rknn", "board_p50_ms", "board_p99_ms", "key"):
            data.pop(name)
        self._eval_file(workdir).write_text(json.dumps(data, indent=2))
        entry = self.cache.store(key, workdir)
        if not self._eval_file(entry).exists():  # a twin got there first with another eval set
            shutil.copyfile(self._eval_file(workdir), self._eval_file(entry))
        candidate.rknn, candidate.key = str(entry / "model.rknn"), key
        self.say(f"  -> cos mean {candidate.cos_mean:.5f} min {candidate.cos_min:.5f}, {candidate.rknn_bytes} bytes")
        return candidate

    # -- the analysis that ranks layers ---------------------------------------------------
    def ranked_groups(self, step1: Step1, samples: int = 4) -> tuple[list[list[str]], Candidate]:
        """Per-layer single errors of the int8 model on evaluation samples, turned into
        repair groups (worst first); the same build also gives the int8 baseline."""
        layers, baseline = self._analysis(samples)
        groups: list[list[str]] = []
        seen: set[str] = set()
        for layer in rank(layers):
            if layer.single_loss <= 1e-6 and not layer.markers:
                break
            new = [t for t in step1.graph.repair_group(layer.tensor) if t not in seen]
            if new:
                groups.append(new)
                seen.update(new)
        return groups, baseline

    def _analysis(self, samples: int) -> tuple[list[LayerSummary], Candidate]:
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
            result = run_job(request, workdir, self.options.worker, what=f"{self.prepared.config.model} (analysis)")
            layers = summarize([parse_error_analysis(Path(p).read_text()) for p in result["reports"]])
            baseline = self._candidate("int8", {}, [], result)
            shutil.rmtree(workdir / "outputs", ignore_errors=True)
            (workdir / "request.json").unlink(missing_ok=True)
            (workdir / saved.name).write_text(
                json.dumps({"layers": [asdict(layer) for layer in layers], "baseline": baseline.to_dict()}, indent=1)
            )
            entry = self.cache.store(key, workdir)
        data = json.loads(saved.read_text())
        layers = [LayerSummary(**dict(layer, markers=tuple(layer["markers"]))) for layer in data["layers"]]
        base = data["baseline"]
        base["outputs"] = [OutputAgreement(**o) for o in base["outputs"]]
        base = {k: v for k, v in base.items() if k not in ("board_p50_ms", "board_p99_ms", "key")}
        baseline = Candidate(**dict(base, cached=not built, rknn=str(entry / "model.rknn")))
        self.say(f"  -> int8: cos mean {baseline.cos_mean:.5f} min {baseline.cos_min:.5f}")
        return layers, baseline


def check_names(names: list[str], step1: Step1) -> None:
    known = step1.cfg.tensors
    for name in names:
        if name not in known:
            near = difflib.get_close_matches(name, known, n=5, cutoff=0.4)
            hint = f"; nearest: {', '.join(near)}" if near else ""
            raise UsageError(
                f"--float '{name}' is not a tensor of this model the toolkit can "
                f"quantize{hint} (all names: `rkbench hybrid MODEL --proposal`, or the "
                "quantize_parameters of a step-1 cfg)"
            )


def with_partners(requested: dict[str, str], step1: Step1) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Each entry with its fused partners, so it takes effect; returns what was added."""
    layers: dict[str, str] = {}
    added: dict[str, list[str]] = {}
    for name, dtype in requested.items():
        for tensor in step1.graph.unit(name):
            if tensor not in layers and tensor not in requested:
                added.setdefault(name, []).append(tensor)
            layers.setdefault(tensor, requested.get(tensor, dtype))
    return layers, added


def merged(groups: list[list[str]], dtype: str) -> dict[str, str]:
    return {tensor: dtype for group in groups for tensor in group}


def search(
    session: HybridSession, step1: Step1, record: HybridRecord, target: float, max_builds: int, dtype: str
) -> Candidate:
    """Smallest set of repair groups whose output cosine reaches the target.

    Candidates are prefixes of the ranked groups: grow geometrically (1, 2, 4, ...) until
    one passes, bisect between the last failing and the first passing prefix, then try
    dropping earlier groups one at a time while builds remain. A float16 candidate whose
    outputs are not finite (an outlier overflowing float16) is retried in int16.
    """
    groups, baseline = session.ranked_groups(step1)
    record.candidates.append(baseline)
    baseline.meets_target = baseline.cos_mean >= target
    if baseline.meets_target:
        record.notes.append(
            f"int8 already meets the target: output cosine {baseline.cos_mean:.5f} "
            f">= {target} on the evaluation set; no layer needs float"
        )
        return baseline
    if not groups:
        record.notes.append("the analysis found no layer with a measurable error to float")
        return baseline

    def budget() -> bool:
        return session.builds < max_builds

    def attempt(chosen: list[list[str]], label: str) -> Candidate:
        nonlocal dtype
        candidate = session.evaluate(step1, merged(chosen, dtype), label)
        if candidate.cos_mean != candidate.cos_mean and dtype == "float16" and budget():
            record.notes.append(
                f"{label}: float16 outputs were not finite (overflow); switching to int16 for the search"
            )
            record.candidates.append(candidate)
            dtype = "int16"
            candidate = session.evaluate(step1, merged(chosen, dtype), label + " int16")
        candidate.meets_target = candidate.cos_mean >= target
        record.candidates.append(candidate)
        return candidate

    passing: tuple[int, Candidate] | None = None
    failing = 0
    k = 1
    while budget():
        k = min(k, len(groups))
        candidate = attempt(groups[:k], f"top {k} group(s)")
        if candidate.meets_target:
            passing = (k, candidate)
            break
        failing = k
        if k == len(groups):
            break
        k *= 2
    if passing is None:
        return max(record.candidates, key=lambda c: (c.cos_mean == c.cos_mean, c.cos_mean))
    hi, best = passing
    while hi - failing > 1 and budget():
        mid = (hi + failing) // 2
        candidate = attempt(groups[:mid], f"top {mid} group(s)")
        if candidate.meets_target:
            hi, best = mid, candidate
        else:
            failing = mid
    chosen = list(groups[:hi])
    for group in reversed(groups[: hi - 1]):
        if not budget():
            break
        trial = [g for g in chosen if g is not group]
        candidate = attempt(trial, f"without {group[-1]}")
        if candidate.meets_target and len(candidate.layers) < len(best.layers):
            chosen, best = trial, candidate
    return best


def write_artifacts(record: HybridRecord, step1: Step1 | None, out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"record": out_dir / "hybrid.json"}
    chosen = record.chosen
    if chosen is not None and chosen.rknn:
        paths["rknn"] = out_dir / "model.rknn"
        shutil.copyfile(chosen.rknn, paths["rknn"])
        if step1 is not None:
            paths["cfg"] = out_dir / "hybrid.quantization.cfg"
            paths["cfg"].write_text(step1.cfg.with_custom(chosen.layers).text())
    paths["record"].write_text(json.dumps(record.to_dict(), indent=2))
    return paths


def not_reached(record: HybridRecord, target: float, max_builds: int) -> TargetNotReached:
    best = record.chosen
    return TargetNotReached(
        f"output cosine {target} not reached within {max_builds} builds: the best candidate "
        f"({best.label}, {len(best.layers)} float layer(s)) reaches {best.cos_mean:.5f}; it is "
        "written out; raise --max-builds, lower --target-cos, or try --dtype int16"
    )


def measure_on_board(candidates: list[Candidate], evalset: EvalSet, board, say: Say) -> None:
    """Latency of each candidate's model on a board's NPU, so the trade-off table shows
    accuracy and speed together. Hybrid models need the NPU: the simulator backend of a
    board without one rebuilds from the recipe and cannot run a hybrid build."""
    from rkbench.boards.connect import board_python
    from rkbench.results.stats import summarize
    from rkbench.run.plan import MeasureOptions
    from rkbench.run.session import run_on_board
    from rkbench_wire import ModelRef

    python = board_python(board.board, board.python)
    with board.open() as transport:
        for candidate in candidates:
            if not candidate.rknn:
                continue
            say(f"measuring {candidate.label} on {board.board}")
            spec = MeasureOptions(backend="rknnlite").spec(
                ModelRef(rknn=candidate.rknn), evalset.arrays, evalset.data_format, save_outputs=False
            )
            outcome = run_on_board(transport, spec, python=python)
            stats = summarize(outcome.results[0].samples_ns)
            candidate.board_p50_ms, candidate.board_p99_ms = stats.p50_ms, stats.p99_ms


def build_from_cfg(prepared: Prepared, cfg: Path, evaluation: Dataset, options: BuildOptions, say: Say) -> Candidate:
    """The hybrid model a cfg describes (its custom_quantize_layers, with fused partners),
    built from one cached step 1 and evaluated on `evaluation`; cached like any build."""
    session = HybridSession(prepared, prepared.dataset, evaluation, options, say)
    try:
        step1 = session.step1()
        requested = read_cfg(cfg).custom
        check_names(list(requested), step1)
        layers, _ = with_partners(requested, step1)
        return session.evaluate(step1, layers, f"hybrid {cfg.name}")
    finally:
        session.close()
