"""`rkbench build`: check the inputs, look in the cache, build in the worker, record it."""

from __future__ import annotations

import datetime
import errno
import json
import platform
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rkbench import __version__
from rkbench.errors import DiskFullError
from rkbench.model.cache import BuildCache, build_key, cache_root, copy_out, file_sha256
from rkbench.model.config import BuildConfig, resolve
from rkbench.model.dataset import Dataset, discard_txt, load_dataset
from rkbench.model.info import ModelInfo, check_readable, read_model
from rkbench.toolkit.worker import WorkerOptions, run_job, toolkit_version

Say = Callable[[str], None]


@dataclass(frozen=True)
class Prepared:
    """A build configuration checked against its model and calibration data."""

    config: BuildConfig
    info: ModelInfo
    dataset: Dataset | None
    model_sha256: str

    @property
    def shapes(self) -> list[tuple[int, ...]]:
        return self.config.input_shapes(self.info)


def prepare(config: BuildConfig) -> Prepared:
    check_readable(config.model)
    sha256 = file_sha256(config.model)
    info = read_model(config.model, sha256, cache_root() / "models")
    config = resolve(config, info)
    dataset = None
    if config.dataset is not None:
        dataset = load_dataset(config.dataset, info, config.input_shapes(info))
    return Prepared(config, info, dataset, sha256)


@dataclass
class BuildOptions:
    worker: WorkerOptions = field(default_factory=WorkerOptions)
    cache: BuildCache = field(default_factory=BuildCache)
    use_cache: bool = True


@dataclass(frozen=True)
class BuildResult:
    rknn: Path
    record: dict
    cached: bool


def build(
    prepared: Prepared, options: BuildOptions, say: Say = lambda _: None, verbose_log: bool = False
) -> BuildResult:
    """Build (or find in the cache). `verbose_log` keeps the toolkit's verbose log, which
    names every output of the model (per-layer debug builds read it)."""
    config = prepared.config
    version = toolkit_version(options.worker.python)
    recipe = config.recipe()
    digest = prepared.dataset.digest if prepared.dataset else None
    key = build_key(prepared.model_sha256, digest, dict(recipe, verbose=True) if verbose_log else recipe, version)
    entry = options.cache.lookup(key) if options.use_cache else None
    if entry is not None:
        say(f"cache hit {key[:12]}: {config.model.name} for {config.target} was built before")
        record = json.loads((entry / "build.json").read_text())
        return BuildResult(entry / "model.rknn", record, cached=True)

    workdir = options.cache.workdir("build")
    try:
        if prepared.dataset is not None:
            recipe = config.recipe(prepared.dataset.write_txt(workdir / "dataset.txt"))
        started = time.perf_counter()
        result = run_job(
            {"job": "build", "recipe": recipe, "export_path": str(workdir / "model.rknn"), "verbose": verbose_log},
            workdir,
            options.worker,
            on_step=lambda step, detail: say(f"toolkit: {step}" + (f" ({detail})" if detail else "")),
            what=str(config.model),
        )
        record = {
            "rkbench_version": __version__,
            "toolkit_version": result["toolkit_version"],
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "host": platform.node(),
            "cache_key": key,
            "model": {"path": str(config.model), "sha256": prepared.model_sha256, "name": config.name},
            "dataset": None
            if prepared.dataset is None
            else {
                "source": str(prepared.dataset.source),
                "samples": len(prepared.dataset.samples),
                "sha256": prepared.dataset.digest,
            },
            "target": config.target,
            "quant": config.quant,
            "recipe": config.recipe(),
            "rknn": {"bytes": result["rknn_bytes"], "sha256": file_sha256(workdir / "model.rknn")},
            "timings_s": {
                **{k: round(v, 3) for k, v in result["timings"].items()},
                "total": round(time.perf_counter() - started, 3),
            },
        }
        discard_txt(workdir / "dataset.txt")  # and the links it may name (paths with spaces)
        entry = options.cache.keep(key, workdir, {"build.json": record})
    except OSError as err:
        shutil.rmtree(workdir, ignore_errors=True)
        if err.errno == errno.ENOSPC:
            raise DiskFullError(
                f"disk full while building {config.model}: free some space in {options.cache.root} and run again"
            ) from None
        raise
    except BaseException:
        # Keep the log of a failed build (the error names it); drop the rest.
        for name in ("model.rknn", "request.json"):
            (workdir / name).unlink(missing_ok=True)
        raise
    say(f"built {config.model.name} for {config.target} in {record['timings_s']['total']:.1f} s")
    return BuildResult(entry / "model.rknn", record, cached=False)


def write_outputs(result: BuildResult, out_dir: Path) -> dict[str, Path]:
    """Copy model.rknn, build.json (with how this run got it) and the toolkit log to out_dir."""
    entry = result.rknn.parent
    paths = {"rknn": out_dir / "model.rknn", "build_json": out_dir / "build.json"}
    copy_out(result.rknn, paths["rknn"])
    record = dict(result.record, cache="hit" if result.cached else "miss")
    try:
        paths["build_json"].write_text(json.dumps(record, indent=2))
    except OSError as err:
        if err.errno == errno.ENOSPC:
            raise DiskFullError(f"disk full while writing {paths['build_json']}") from None
        raise
    if (entry / "toolkit.log").exists():
        paths["log"] = out_dir / "toolkit.log"
        copy_out(entry / "toolkit.log", paths["log"])
    return paths
