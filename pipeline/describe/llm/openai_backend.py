"""Any OpenAI-compatible endpoint (``vllm serve``, llama.cpp's server, a hosted API), over plain HTTP.

One request per sample, each with its own seed: servers differ in whether they honour ``n``, all
honour one answer per request. Requests run ``concurrency`` at a time; a failed one is retried with
exponential backoff; after ``retries`` attempts the whole run stops with the last reason, and
requests still waiting are not sent.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pipeline.core.params import DescribeParams, OpenAIParams
from pipeline.describe.llm import Completion, LLMError, Sampling, chat_messages

RETRY_STATUS = {408, 409, 429}


class OpenAIBackend:
    def __init__(self, params: OpenAIParams, mode: str, api_key: str | None) -> None:
        self.params = params
        self.mode = mode
        self.api_key = api_key
        path = "chat/completions" if mode == "chat" else "completions"
        self.url = f"{params.base_url.rstrip('/')}/{path}"
        self.identity = {"backend": "openai", "model": params.model, "mode": mode}

    def _body(self, prompt: str, sampling: Sampling, seed: int) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.params.model,
            "max_tokens": sampling.max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "seed": seed,
            "n": 1,
        }
        if sampling.stop:
            body["stop"] = list(sampling.stop)
        if self.mode == "chat":
            body["messages"] = chat_messages(prompt)
        else:
            body["prompt"] = prompt
        return body

    def _parse(self, raw: bytes) -> tuple[str, int]:
        doc = json.loads(raw)
        choice = doc["choices"][0]
        text = choice["message"]["content"] if self.mode == "chat" else choice["text"]
        if not isinstance(text, str):
            raise TypeError("the answer's text is not a string")
        usage = doc.get("usage") or {}
        return text, int(usage.get("completion_tokens") or 0)

    def _attempt(self, body: dict[str, Any]) -> tuple[str, int] | str:
        """The answer, or why this attempt failed in a way worth retrying."""
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(self.url, json.dumps(body).encode(), headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.params.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as err:
            detail = err.read()[:300].decode("utf-8", "replace")
            if err.code in (401, 403):
                raise LLMError(
                    f"{self.url}: HTTP {err.code} ({detail}); put the API key in the environment "
                    f"variable that describe.openai.api_key_env names ({self.params.api_key_env})"
                ) from None
            if err.code < 500 and err.code not in RETRY_STATUS:
                raise LLMError(
                    f"{self.url}: HTTP {err.code} ({detail}); check describe.openai.model "
                    f"({self.params.model!r}) and describe.mode ({self.mode!r})"
                ) from None
            return f"HTTP {err.code}: {detail}"
        except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as err:
            return f"{type(err).__name__}: {getattr(err, 'reason', err)}"
        try:
            return self._parse(raw)
        except (ValueError, KeyError, IndexError, TypeError):
            return f"an answer that is not an OpenAI {self.mode} response: {raw[:120]!r}"

    def _answer(self, prompt: str, sampling: Sampling, seed: int, stop: threading.Event) -> tuple[str, int] | None:
        """The answer; None when another request failed meanwhile (the run stops, no use trying)."""
        body = self._body(prompt, sampling, seed)
        reason = ""
        for attempt in range(self.params.retries):
            if stop.is_set():
                return None
            if attempt:
                time.sleep(self.params.backoff * 2 ** (attempt - 1))
            result = self._attempt(body)
            if not isinstance(result, str):
                return result
            reason = result
        raise LLMError(
            f"{self.url}: no usable answer after {self.params.retries} attempts (last: {reason}); "
            "check that the server runs and describe.openai.base_url and describe.mode"
        )

    def generate(self, prompts: Sequence[str], sampling: Sampling) -> list[Completion]:
        stop = threading.Event()

        def answer(prompt: str, seed: int) -> tuple[str, int] | None:
            try:
                return self._answer(prompt, sampling, seed, stop)
            except BaseException:
                stop.set()
                raise

        with ThreadPoolExecutor(self.params.concurrency) as pool:
            futures = [pool.submit(answer, prompt, seed) for prompt in prompts for seed in sampling.sample_seeds()]
        errors = [f.exception() for f in futures if f.exception() is not None]
        if errors:
            raise errors[0]
        answers = [f.result() for f in futures]
        n = sampling.samples
        return [
            Completion(tuple(t for t, _ in answers[i : i + n]), sum(k for _, k in answers[i : i + n]))
            for i in range(0, len(answers), n)
        ]


def create(params: DescribeParams) -> OpenAIBackend:
    p = params.openai
    if not p.base_url.startswith(("http://", "https://")):
        raise LLMError(
            f"describe.openai.base_url = {p.base_url!r}: give an http:// or https:// URL "
            "(e.g. http://127.0.0.1:8000/v1)"
        )
    api_key = os.environ.get(p.api_key_env) if p.api_key_env else None
    return OpenAIBackend(p, params.mode, api_key)
