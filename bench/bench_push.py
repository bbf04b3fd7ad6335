"""Push throughput: deploy.ensure_blob over our SSH transport vs OpenSSH scp.

    python -m bench.bench_push [--mb 50] [--runs 3]

Starts a throwaway sshd on 127.0.0.1 (needs openssh-server), pushes a random
blob with ensure_blob (upload to a temp name, remote sha256 check, rename),
times `scp` of the same blob to the same server, prints both throughputs and
their ratio (target >= 0.8x scp), then re-pushes and prints the bytes sent
(target 0). Best of --runs for each side; connection set-up is excluded for
ensure_blob (an open transport is reused across a run) and included for scp
(one process per copy), as in real use.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.bench_push", description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=50, help="blob size in MB (default 50)")
    ap.add_argument("--runs", type=int, default=3, help="repetitions, best is kept (default 3)")
    args = ap.parse_args(argv)

    from tests.support.sshd import have_sshd, make_client_key, start_sshd

    if not have_sshd():
        print("bench_push: OpenSSH server not installed (apt-get install openssh-server)", file=sys.stderr)
        return 2
    from rkbench.boards.deploy import DeployStats, ensure_blob, sha256_file
    from rkbench.boards.transport import open_transport

    with tempfile.TemporaryDirectory(prefix="rkbench-bench-push-") as tmp:
        tmp = Path(tmp)
        os.environ["HOME"] = str(tmp / "home")  # test-local ~/.ssh
        os.environ.pop("SSH_AUTH_SOCK", None)
        key = make_client_key(tmp / "home" / ".ssh")
        server = start_sshd(tmp / "sshd", [key])
        try:
            kh = tmp / "home" / ".ssh" / "known_hosts"
            server.trust(kh)
            blob = tmp / "blob.bin"
            size = args.mb * 1_000_000
            with open(blob, "wb") as f:
                for _ in range(args.mb):
                    f.write(os.urandom(1_000_000))
            mb = size / 1e6

            # ours
            ours, put_only = [], []
            for _i in range(args.runs):
                shutil.rmtree(server.home / ".cache", ignore_errors=True)
                with open_transport(server.board, identity_files=[key]) as t:
                    t0 = time.perf_counter()
                    st = DeployStats()
                    ensure_blob(t, blob, stats=st)
                    ours.append(time.perf_counter() - t0)
                    assert st.bytes_pushed == size, st
                    t.makedirs(str(server.home / "raw"))
                    t0 = time.perf_counter()
                    t.put(blob, str(server.home / "raw" / "blob.bin"))
                    put_only.append(time.perf_counter() - t0)

            # scp
            scp_times = []
            dest = server.home / "scp"
            dest.mkdir(parents=True, exist_ok=True)
            for _i in range(args.runs):
                (dest / "blob.bin").unlink(missing_ok=True)
                cmd = [
                    "scp",
                    "-q",
                    "-B",
                    "-o",
                    f"UserKnownHostsFile={kh}",
                    "-o",
                    "StrictHostKeyChecking=yes",
                    "-o",
                    "GlobalKnownHostsFile=/dev/null",
                    "-i",
                    str(key),
                    "-P",
                    str(server.port),
                    str(blob),
                    f"{server.user}@{server.host}:{dest}/blob.bin",
                ]
                t0 = time.perf_counter()
                subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL)
                scp_times.append(time.perf_counter() - t0)
            assert sha256_file(dest / "blob.bin") == sha256_file(blob)

            # re-push
            with open_transport(server.board, identity_files=[key]) as t:
                st = DeployStats()
                t0 = time.perf_counter()
                ensure_blob(t, blob, stats=st)
                again = time.perf_counter() - t0

            best_ours, best_put, best_scp = min(ours), min(put_only), min(scp_times)
            ratio = (mb / best_ours) / (mb / best_scp)
            print(f"blob: {mb:.0f} MB random, sshd on {server.host}:{server.port} (loopback), best of {args.runs}")
            print(f"ensure_blob : {mb / best_ours:8.1f} MB/s  ({best_ours:.3f} s: hash, upload, remote sha256, rename)")
            print(f"  put only  : {mb / best_put:8.1f} MB/s  ({best_put:.3f} s: SFTP upload alone)")
            print(f"scp         : {mb / best_scp:8.1f} MB/s  ({best_scp:.3f} s, incl. connection set-up)")
            verdict = "ok" if ratio >= 0.8 else "BELOW TARGET"
            print(f"ratio ensure_blob/scp: {ratio:.2f}x (target >= 0.8x: {verdict})")
            print(
                f"re-push: {st.bytes_pushed} bytes sent, {st.blobs_reused} blob reused, {again:.3f} s "
                f"(target 0 bytes: {'ok' if st.bytes_pushed == 0 else 'FAILED'})"
            )
            return 0 if ratio >= 0.8 and st.bytes_pushed == 0 else 1
        finally:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
