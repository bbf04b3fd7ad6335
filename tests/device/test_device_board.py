"""The runner on a real board over SSH (RKBENCH_TEST_BOARD=ssh://user@host[:port]).

Skipped unless RKBENCH_TEST_BOARD is set. The board's host key must be in
~/.ssh/known_hosts (strict checking) and key authentication must work. The test copies
the runner and the wire package to a temporary directory on the board, checks `info`,
then measures the tiny model: with rknnlite (a .rknn built here for the board's SoC
with rknn-toolkit2) when the board has it, else with onnxruntime.
"""

from __future__ import annotations

import importlib.util
import json
import os
import posixpath
import shlex
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest

from device_testing import DEVICE, SHARED, runner_env
from rkbench_wire import PROTOCOL_VERSION, decode_board_info, decode_event

BOARD = os.environ.get("RKBENCH_TEST_BOARD", "")

pytestmark = [
    pytest.mark.board,
    pytest.mark.skipif(not BOARD, reason="set RKBENCH_TEST_BOARD=ssh://user@host[:port] to run on a board"),
]


@pytest.fixture(scope="module")
def board():
    import paramiko

    url = urlparse(BOARD)
    assert url.scheme == "ssh" and url.hostname, "RKBENCH_TEST_BOARD must look like ssh://user@host[:port]"
    client = paramiko.SSHClient()
    client.load_system_host_keys()
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(url.hostname, port=url.port or 22, username=url.username, timeout=15)
    _, out, _ = client.exec_command("mktemp -d /tmp/rkbench-test.XXXXXX")
    remote = out.read().decode().strip()
    sftp = client.open_sftp()
    for package in (DEVICE / "rkbench_device", SHARED / "rkbench_wire"):
        for path in sorted(package.rglob("*.py")):
            target = posixpath.join(remote, path.relative_to(package.parent).as_posix())
            _mkdirs(sftp, posixpath.dirname(target))
            sftp.put(str(path), target)
    try:
        yield client, sftp, remote
    finally:
        client.exec_command("rm -rf %s" % shlex.quote(remote))[1].channel.recv_exit_status()
        sftp.close()
        client.close()


def _mkdirs(sftp, path):
    parts = path.strip("/").split("/")
    for i in range(1, len(parts) + 1):
        current = "/" + "/".join(parts[:i])
        try:
            sftp.stat(current)
        except OSError:
            sftp.mkdir(current)


def _runner_command(remote, *args):
    return "cd %s && PYTHONPATH=%s python3 -m rkbench_device %s" % (
        shlex.quote(remote),
        shlex.quote(remote),
        " ".join(shlex.quote(a) for a in args),
    )


def test_board_info_and_run(board, model_dir, tmp_path):
    client, sftp, remote = board
    _, out, err = client.exec_command(_runner_command(remote, "info"), timeout=60)
    facts = decode_board_info(out.read())
    assert facts["soc"], "no Rockchip SoC in /proc/device-tree/compatible: %s" % facts["soc_compatible"]
    assert facts["npu_cores"] in (1, 2, 3)

    spec = {
        "v": PROTOCOL_VERSION,
        "warmup": 5,
        "min_runs": 50,
        "min_seconds": 1.0,
        "max_seconds": 30.0,
        "output_dir": posixpath.join(remote, "out"),
        "telemetry_interval_s": 0.5,
        "lock_path": posixpath.join(remote, "board.lock"),
    }
    x = np.load(model_dir / "input_0.npy")
    sftp.put(str(model_dir / "input_0.npy"), posixpath.join(remote, "input_0.npy"))
    spec["inputs"] = [[posixpath.join(remote, "input_0.npy")]]
    spec["data_format"] = ["nchw"]
    if facts["backends"]["rknnlite"]["available"] and importlib.util.find_spec("rknn") is not None:
        rknn_path = tmp_path / "tiny.rknn"
        _build_rknn(model_dir, facts["soc"], rknn_path)
        sftp.put(str(rknn_path), posixpath.join(remote, "tiny.rknn"))
        spec.update(
            backend="rknnlite",
            model={"rknn": posixpath.join(remote, "tiny.rknn")},
            core_masks=["auto"] + (["0_1_2"] if facts["npu_cores"] == 3 else []),
        )
    elif facts["backends"]["onnxruntime"]["available"]:
        sftp.put(str(model_dir / "tiny.onnx"), posixpath.join(remote, "tiny.onnx"))
        spec.update(backend="onnxruntime", model={"onnx": posixpath.join(remote, "tiny.onnx")})
    else:
        pytest.skip("the board has neither rknnlite (+ rknn-toolkit2 here) nor onnxruntime")

    stdin, out, err = client.exec_command(_runner_command(remote, "run"), timeout=120)
    stdin.write(json.dumps(spec) + "\n")
    stdin.flush()
    events = [decode_event(line) for line in out.read().decode().splitlines()]  # stdin kept open till here
    stdin.close()
    kinds = [e.type for e in events]
    assert kinds[0] == "hello" and kinds[-1] == "done", (kinds, err.read().decode()[-2000:])
    assert events[-1].ok, [e for e in events if e.type == "error"]
    results = [e for e in events if e.type == "result"]
    assert [r.backend for r in results] == [spec["backend"]] * len(results)
    for result in results:
        assert result.counts["runs"] >= 50 and result.elapsed_s >= 1.0
        local = tmp_path / ("board_out_%s.npy" % (result.core_mask or "cpu"))
        sftp.get(result.outputs[0]["files"][0]["path"], str(local))
        import onnxruntime as ort

        (want,) = ort.InferenceSession(str(model_dir / "tiny.onnx"), providers=["CPUExecutionProvider"]).run(
            None, {"image": x}
        )
        got = np.load(local).astype(np.float64).ravel()
        cos = float(got @ want.ravel() / (np.linalg.norm(got) * np.linalg.norm(want)))
        assert cos > 0.98, "board output differs from fp32: cosine %.4f" % cos
    assert any(e.type == "telemetry" for e in events)


def _build_rknn(model_dir: Path, soc: str, target: Path) -> None:
    code = (
        "import sys\n"
        "from rknn.api import RKNN\n"
        "r = RKNN(verbose=False)\n"
        "r.config(mean_values=[[0,0,0]], std_values=[[1,1,1]], target_platform=sys.argv[3])\n"
        "assert r.load_onnx(model=sys.argv[1]) == 0\n"
        "assert r.build(do_quantization=True, dataset=sys.argv[4]) == 0\n"
        "assert r.export_rknn(sys.argv[2]) == 0\n"
    )
    subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            str(model_dir / "tiny.onnx"),
            str(target),
            soc[:6],
            str(model_dir / "dataset.txt"),
        ],
        check=True,
        env=runner_env(),
        capture_output=True,
        timeout=300,
    )
