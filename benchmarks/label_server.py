"""Latency of the labelling server: 8 simulated labellers fetch a query and post a label, on loopback.

A real uvicorn server (``rewardlab.labelling.serve``, one process) serves a run whose queue holds
``labellers × labels_each`` queries asked of two labellers each; every simulated labeller (a thread
with its own keep-alive HTTP connection) loops ``GET /api/next`` then ``POST /api/labels`` until it
has given ``labels_each`` labels or ``max_seconds`` have passed. Each label is one SQLite
transaction with ``synchronous=FULL`` (an fsync before the reply). Figures: p50/p99 milliseconds of
both requests together (``p99_ms``, goal < 50 ms) and of each alone, labels per second.

    python -m benchmarks.label_server [--labellers 8] [--labels-each 50] [--max-seconds 60]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

from benchmarks._common import print_figures


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _labeller(base: str, name: str, count: int, deadline: float, out: dict[str, list[float]]) -> None:
    import httpx

    with httpx.Client(base_url=base, timeout=30.0) as client:
        token = client.post("/api/labellers", json={"name": name}).json()["token"]
        headers = {"X-Labeller": token}
        for _ in range(count):
            if time.perf_counter() > deadline:
                return
            start = time.perf_counter()
            query = client.get("/api/next", headers=headers).json()["query"]
            fetched = time.perf_counter()
            if query is None:
                return
            response = client.post(
                "/api/labels", json={"query_id": query["id"], "choice": "left", "seconds": 1.0}, headers=headers
            )
            done = time.perf_counter()
            if response.status_code == 201:
                out["next"].append(fetched - start)
                out["label"].append(done - fetched)
            elif response.status_code != 409:  # 409: another labeller closed the query first
                raise SystemExit(f"label_server: POST /api/labels answered {response.status_code}: {response.text}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labellers", type=int, default=8)
    parser.add_argument("--labels-each", type=int, default=50)
    parser.add_argument("--max-seconds", type=float, default=60.0)
    options = parser.parse_args()

    import httpx

    from rewardlab.labelling import LabelStore, labelling_paths
    from rewardlab.preferences import synthetic_pairs

    run_dir = tempfile.mkdtemp(prefix="label-server-")
    num_queries = options.labellers * options.labels_each
    returns = np.random.default_rng(0).normal(size=(num_queries, 2))
    store = LabelStore(labelling_paths(run_dir)[0])
    store.add_queries(synthetic_pairs(returns, length=50, obs_dim=17), labels_wanted=2)
    store.close()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    code = f"from rewardlab.labelling import serve; serve({run_dir!r}, port={port})"
    server = subprocess.Popen([sys.executable, "-c", code])
    try:
        while True:
            try:
                httpx.get(f"{base}/api/stats", timeout=1.0)
                break
            except httpx.TransportError:
                if server.poll() is not None:
                    raise SystemExit("label_server: the server exited at start") from None
                time.sleep(0.1)
        out: dict[str, list[float]] = {"next": [], "label": []}
        deadline = time.perf_counter() + options.max_seconds
        threads = [
            threading.Thread(target=_labeller, args=(base, f"sim{i}", options.labels_each, deadline, out))
            for i in range(options.labellers)
        ]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - start
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(run_dir, ignore_errors=True)
    both = 1e3 * np.concatenate([out["next"], out["label"]])
    if both.size == 0:
        raise SystemExit("label_server: no label was posted")
    next_ms, label_ms = 1e3 * np.asarray(out["next"]), 1e3 * np.asarray(out["label"])
    print_figures(
        {
            "p99_ms": round(float(np.percentile(both, 99)), 2),
            "p50_ms": round(float(np.percentile(both, 50)), 2),
            "next_p50_ms": round(float(np.percentile(next_ms, 50)), 2),
            "next_p99_ms": round(float(np.percentile(next_ms, 99)), 2),
            "label_p50_ms": round(float(np.percentile(label_ms, 50)), 2),
            "label_p99_ms": round(float(np.percentile(label_ms, 99)), 2),
            "labels": int(label_ms.size),
            "labels_per_s": round(label_ms.size / wall, 1),
            "labellers": options.labellers,
            "wall_s": round(wall, 2),
        }
    )


if __name__ == "__main__":
    main()
