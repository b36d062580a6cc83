"""A stand-in OpenAI-compatible endpoint on loopback for tests: real HTTP, answers chosen by the test.

``ChatStandIn(answer)`` serves ``POST .../chat/completions``; ``answer(body) -> (status, content)``
picks each reply from the request body (a string becomes the assistant message of a completion, a
dict is sent as the JSON error body). Every request body is kept in ``requests``.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable
from typing import Any


def completion(model: str, content: str, prompt_tokens: int = 11, completion_tokens: int = 7) -> dict[str, Any]:
    """A chat completion holding ``content``, as an OpenAI-compatible server sends it."""
    return {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


class ChatStandIn:
    """Serves chat completions on 127.0.0.1 (a free port) until ``close()``; ``url`` is its base URL."""

    def __init__(self, answer: Callable[[dict[str, Any]], tuple[int, str | dict[str, Any]]]) -> None:
        self.requests: list[dict[str, Any]] = []
        stand_in = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stand_in.requests.append(body)
                code, content = answer(body)
                payload = completion(body["model"], content) if isinstance(content, str) else content
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
