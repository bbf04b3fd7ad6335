"""`rkbench run` on an SSH board: a real OpenSSH server on loopback whose user logs in to
this machine. The board's Python is this venv's (`--python`), which has numpy,
onnxruntime and rknn-toolkit2; the board's cache lives in the server's own HOME."""

from __future__ import annotations

from .helpers import deploy_line, explain, model_args, run_ids, ssh_args


def test_ssh_board_backends_and_second_run_pushes_nothing(
    rk, warm_run, cls_model, cls_dataset, sshd, ssh_home, ssh_client_key, tmp_path, isolated
):
    db, out = isolated["db"], isolated["out"]
    board = ssh_args(sshd, ssh_home, ssh_client_key, tmp_path)
    blobs = sshd.home / ".cache" / "rkbench" / "blobs"
    assert not blobs.exists()  # a fresh board

    def run(backend: str):
        done = rk(
            "run",
            *model_args(cls_model, cls_dataset),
            "--backend",
            backend,
            *board,
            "--db",
            db,
            "-o",
            out / backend,
            HOME=ssh_home,
        )
        assert done.returncode == 0, explain(done)
        [run_id] = run_ids(done.stdout)
        shown = rk.show(db, run_id)
        assert shown["backend"] == backend and shown["status"] == "ok"
        assert shown["board"] == sshd.board
        assert f"backend {backend}" in done.stdout and sshd.board in done.stdout
        assert f"board lock held ({sshd.home}/.cache/rkbench/board.lock)" in done.stderr
        return done, shown

    first, ort = run("onnxruntime")
    pushed, files, _ = deploy_line(first.stdout)
    model_bytes = cls_model.stat().st_size
    assert files >= 2 and pushed > model_bytes  # runner + model.onnx + inputs on a fresh board
    assert any(p.stat().st_size == model_bytes for p in blobs.iterdir())
    # onnxruntime runs the fp32 model: it IS the fp32 reference
    assert min(o["cos_min"] for o in ort["outputs"] if o["reference"] == "fp32") > 0.99999

    second, sim = run("simulator")
    assert deploy_line(second.stdout)[:2] == (0, 0), "the model and inputs are on the board already"
    assert "simulator analysis: cached" in second.stderr
    # the board's simulator agrees with the host's simulator bit for bit
    assert min(o["cos_min"] for o in sim["outputs"] if o["reference"] == "simulator") > 0.99999

    third, again = run("onnxruntime")
    assert deploy_line(third.stdout)[:2] == (0, 0)
    assert again["previous_runs"] and again["previous_runs"][0]["run_id"] == ort["run_id"]
    assert "vs previous p50" in third.stdout  # compared with the first onnxruntime run only
    rows = rk.history(db)
    assert [r["backend"] for r in rows] == ["onnxruntime", "simulator", "onnxruntime"]
    # nothing of the runs is left on the board but the content-addressed cache
    assert not list((sshd.home / ".cache" / "rkbench" / "runs").glob("*"))
