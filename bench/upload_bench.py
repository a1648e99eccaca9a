"""Upload benchmark: one 100 MB POST /v1/uploads through a real gunicorn gevent worker.

    .venv/bin/python -m bench.upload_bench [--mb 100] [--runs 3]

Starts gunicorn (one gevent worker, temp SQLite DB, file store in a temp dir) on a free
loopback port, warms the worker with a small upload (so Pillow/mutagen are imported), then
streams a multipart body of --mb MB from a generator (the client never holds it either).
Reports throughput (MB/s, wall time of the request) and the worker's peak RSS growth:
VmHWM after the upload minus VmRSS before it (VmHWM is reset first via
/proc/<pid>/clear_refs where the kernel allows). Results also go to bench/results/upload.json.
Not part of `make test`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import requests

from beatra.localprocs import first_child, free_port, status_kb, wait_http

ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024
BOUNDARY = "beatra-bench-boundary"


def _reset_peak(pid: int) -> bool:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # "5": reset VmHWM to current RSS
    except OSError:
        return False
    return True


class MultipartBody:
    """A multipart/form-data body with one file part of `size` bytes, generated on demand.
    Has __len__ so requests sends Content-Length (like a browser or curl would)."""

    def __init__(self, size: int) -> None:
        self.head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
                     f"filename=\"bench.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                     ).encode()
        self.tail = f"\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"purpose\"" \
                    f"\r\n\r\nmedia_input\r\n--{BOUNDARY}--\r\n".encode()
        self.size = size
        # Not compressible-looking, unique per run so the upload is never a de-dup hit.
        seed = os.urandom(16)
        self.block = b"".join(hashlib.sha256(seed + i.to_bytes(4, "big")).digest()
                              for i in range(MB // 32))
        self.sha256 = hashlib.sha256()

    def __len__(self) -> int:
        return len(self.head) + self.size + len(self.tail)

    def __iter__(self) -> Iterator[bytes]:
        yield self.head
        left = self.size
        while left:
            chunk = self.block[: min(left, len(self.block))]
            self.sha256.update(chunk)
            left -= len(chunk)
            yield chunk
        yield self.tail


def _account(env: dict[str, str]) -> str:
    code = (
        "from flask_migrate import upgrade\n"
        "from beatra import create_app\n"
        "from beatra.accounts import service\n"
        "app = create_app()\n"
        "with app.app_context():\n"
        "    upgrade()\n"
        "    acct = service.create_account('bench')\n"
        "    print(service.create_key(acct.id)[1])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True,
                         capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def _upload(base: str, key: str, body: MultipartBody) -> requests.Response:
    return requests.post(
        f"{base}/v1/uploads", data=body, timeout=300,
        headers={"Authorization": f"Bearer {key}",
                 "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
                 "Content-Length": str(len(body))})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=100, help="file size in MB (cap: 100)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="beatra-upload-bench-"))
    port = free_port()
    env = {**os.environ,
           "DATABASE_URL": f"sqlite:///{tmp / 'bench.db'}",
           "BEATRA_STORAGE_URL": f"file://{tmp / 'artifacts'}",
           "BEATRA_VAR_DIR": str(tmp),
           "BEATRA_SECRET_KEY": "bench",
           "BEATRA_PUBLIC_URL": f"http://127.0.0.1:{port}",
           "BEATRA_LOG_LEVEL": "WARNING",
           "BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "1",
           "TMPDIR": str(tmp)}  # Werkzeug's spool files land here, on the same disk
    key = _account(env)
    base = f"http://127.0.0.1:{port}"
    master = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py",
                               "wsgi:app"], cwd=ROOT, env=env)
    runs = []
    try:
        wait_http(f"{base}/v1/health", master)
        worker = first_child(master.pid)
        warm = _upload(base, key, MultipartBody(64 * 1024))
        assert warm.status_code == 201, warm.text
        for _ in range(args.runs):
            body = MultipartBody(args.mb * MB)
            rss_before = status_kb(worker, "VmRSS")
            reset = _reset_peak(worker)
            peak = {"kb": rss_before}
            done = threading.Event()

            def sample(peak=peak, done=done) -> None:  # fallback when VmHWM cannot be reset
                while not done.wait(0.01):
                    peak["kb"] = max(peak["kb"], status_kb(worker, "VmRSS"))

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            t0 = time.perf_counter()
            resp = _upload(base, key, body)
            seconds = time.perf_counter() - t0
            done.set()
            sampler.join()
            assert resp.status_code == 201, resp.text
            assert resp.json()["checksum_sha256"] == body.sha256.hexdigest()
            hwm = status_kb(worker, "VmHWM") if reset else peak["kb"]
            runs.append({"seconds": round(seconds, 3),
                         "mb_per_s": round(args.mb / seconds, 1),
                         "rss_before_mb": round(rss_before / 1024, 1),
                         "peak_rss_growth_mb": round(max(hwm, peak["kb"]) / 1024
                                                     - rss_before / 1024, 1),
                         "peak_from": "VmHWM" if reset else "VmRSS sampled every 10 ms"})
    finally:
        master.send_signal(signal.SIGINT)  # gunicorn: quick shutdown (no graceful drain)
        try:
            master.wait(timeout=15)
        except subprocess.TimeoutExpired:
            master.kill()
            master.wait()
    best = max(runs, key=lambda r: r["mb_per_s"])
    worst_growth = max(r["peak_rss_growth_mb"] for r in runs)
    report = {"file_mb": args.mb, "runs": runs, "best_mb_per_s": best["mb_per_s"],
              "max_peak_rss_growth_mb": worst_growth,
              "note": "1 gunicorn gevent worker, SQLite, file store; loopback; Content-Length "
                      "body streamed from a generator"}
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "upload.json").write_text(json.dumps(report, indent=2) + "\n")
    for r in runs:
        print(f"upload {args.mb} MB: {r['seconds']} s, {r['mb_per_s']} MB/s, worker peak RSS "
              f"growth {r['peak_rss_growth_mb']} MB (RSS before {r['rss_before_mb']} MB, "
              f"{r['peak_from']})")
    print(f"BENCH upload_100mb best_mb_per_s={best['mb_per_s']} "
          f"max_worker_peak_rss_growth_mb={worst_growth}")
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
