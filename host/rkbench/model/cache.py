"""A content-addressed build cache: the same model bytes, calibration data, configuration
and toolkit version never build twice."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path

from rkbench.errors import DiskFullError

KEY_SCHEMA = 1


def cache_root() -> Path:
    env = os.environ.get("RKBENCH_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rkbench"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build_key(model_sha256: str, dataset_digest: str | None, recipe: dict, toolkit_version: str) -> str:
    """Paths do not matter, content does: the recipe's model and dataset paths are replaced
    by the hashes of what they hold."""
    recipe = json.loads(json.dumps(recipe))
    recipe["load"]["kwargs"]["model"] = model_sha256
    recipe["build"]["dataset"] = dataset_digest if recipe["build"]["dataset"] else None
    material = {"schema": KEY_SCHEMA, "recipe": recipe, "toolkit": toolkit_version}
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


class BuildCache:
    def __init__(self, root: Path | None = None):
        self.root = root or cache_root()

    def entry(self, key: str) -> Path:
        return self.root / "builds" / key

    def lookup(self, key: str) -> Path | None:
        entry = self.entry(key)
        if (entry / "model.rknn").is_file() and (entry / "build.json").is_file():
            return entry
        return None

    def workdir(self, prefix: str) -> Path:
        path = self.root / "work" / f"{prefix}-{uuid.uuid4().hex[:12]}"
        path.mkdir(parents=True)
        return path

    def keep(
        self, key: str, workdir: Path, manifest: dict[str, dict], drop: tuple[str, ...] = (), section: str = "builds"
    ) -> Path:
        """Finish a toolkit job's work directory and store it under `key`: write each
        manifest (file name -> JSON-able dict, e.g. {"build.json": record}), remove the
        job's request.json and the `drop` names (files or folders that must not be cached:
        inputs, simulator dumps), then move it into `root/section/key`. Where that entry
        exists already (a concurrent twin, or the same build evaluated on other inputs), the
        files it lacks are added to it and the rest is dropped. Returns the entry."""
        for name, data in manifest.items():
            (workdir / name).write_text(json.dumps(data, indent=2))
        for name in ("request.json", *drop):
            path = workdir / name
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        entry = self.root / section / key
        entry.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(workdir, entry)
        except OSError:
            if not entry.is_dir():
                raise
            for path in workdir.iterdir():
                if not (entry / path.name).exists():
                    os.replace(path, entry / path.name)
            shutil.rmtree(workdir, ignore_errors=True)
        return entry


def copy_out(source: Path, target: Path) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    except OSError as err:
        if err.errno == 28:  # ENOSPC
            raise DiskFullError(f"disk full while writing {target}: free some space and run again") from None
        raise
