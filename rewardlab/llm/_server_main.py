"""The local language-model server's process: llama.cpp (xllamacpp) serving one GGUF model on loopback.

Started by :class:`rewardlab.llm.LocalServer` as ``python <this file> <config json>``; a
standalone script that imports the standard library and ``xllamacpp`` only. It dies with its
parent (``PR_SET_PDEATHSIG``, and a watchdog thread where that is not available), prints one
JSON line ``{"listening": "http://127.0.0.1:PORT"}`` once the model is loaded, and stops on
SIGTERM or SIGINT. A crash of the native server takes down this process only.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import threading
import time
from typing import Any


def _die_with_parent(parent_pid: int) -> None:
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def main() -> None:
    config: dict[str, Any] = json.loads(sys.argv[1])
    parent_pid = int(config["parent_pid"])
    if os.getppid() != parent_pid:
        os._exit(0)
    _die_with_parent(parent_pid)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = config["model_path"]
    params.model_alias = {config["model_name"]}
    params.hostnames = [config["host"]]
    params.port = int(config["port"])
    params.n_ctx = int(config["context_tokens"])
    params.n_parallel = int(config["parallel"])
    params.cpuparams.n_threads = int(config["threads"])
    params.cpuparams_batch.n_threads = int(config["threads"])
    server = xllamacpp.Server(params)
    print(json.dumps({"listening": server.listening_address}), flush=True)
    while not stop.wait(0.5):
        pass
    del server
    os._exit(0)


if __name__ == "__main__":
    main()
