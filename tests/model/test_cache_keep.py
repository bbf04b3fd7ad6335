"""BuildCache.keep(): one way to finish a toolkit job's work directory into the cache."""

import json
from pathlib import Path

from rkbench.model.cache import BuildCache


def job_dir(cache: BuildCache, extra: str = "a") -> Path:
    work = cache.workdir("job")
    (work / "request.json").write_text("{}")
    (work / "model.rknn").write_bytes(b"rknn")
    (work / "outputs").mkdir()
    (work / "outputs" / "big.npy").write_bytes(b"x" * 10)
    (work / f"eval-{extra}.json").write_text("{}")
    return work


def test_keep_writes_manifests_drops_transients_and_stores(tmp_path):
    cache = BuildCache(tmp_path)
    work = job_dir(cache)
    entry = cache.keep("k1", work, {"build.json": {"label": "x"}}, drop=("outputs",))
    assert entry == cache.entry("k1") and not work.exists()
    assert sorted(p.name for p in entry.iterdir()) == ["build.json", "eval-a.json", "model.rknn"]
    assert json.loads((entry / "build.json").read_text()) == {"label": "x"}
    assert cache.lookup("k1") == entry


def test_keep_into_an_existing_entry_adds_what_it_lacks(tmp_path):
    """A twin finished first, or the same build was evaluated on other inputs before."""
    cache = BuildCache(tmp_path)
    first = cache.keep("k1", job_dir(cache, "a"), {"build.json": {"n": 1}})
    second = job_dir(cache, "b")
    assert cache.keep("k1", second, {"build.json": {"n": 2}}) == first and not second.exists()
    assert (first / "eval-a.json").exists() and (first / "eval-b.json").exists()
    assert json.loads((first / "build.json").read_text()) == {"n": 1}  # the first one stays


def test_keep_in_another_section(tmp_path):
    cache = BuildCache(tmp_path)
    work = cache.workdir("run-analysis")
    entry = cache.keep("k2", work, {"analysis.json": {"layers": []}}, section="analyses")
    assert entry == tmp_path / "analyses" / "k2" and (entry / "analysis.json").exists()
