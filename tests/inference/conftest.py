"""Fixtures: the real bundled model on llama.cpp in a child server, and a tiny random llama for
transformers.

llama.cpp runs in child processes here (`inference_server`, `run_in_child`): a native crash
then fails the tests that used it, naming the signal, instead of killing the whole suite."""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from inference.server.chat_template import CHATML
from tests.services import InferenceServer

CORPUS = [
    "The weather in Paris is sunny today; in Rome it rains. Héllo wörld, ça va? ✓ 日本",
    '{"name": "get_weather", "arguments": {"city": "Paris", "days": 3}}',
    "<tool_call>Hello, how are you? I am fine, thank you.</tool_call>",
]


@pytest.fixture(autouse=True)
def _inference_server_survives(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test that used the shared child server: fail it if the server died."""
    yield
    if "inference_server" in request.fixturenames:
        server: InferenceServer = request.getfixturevalue("inference_server")
        server.check_alive()


def run_in_child(target: Callable[..., None], *args: object, timeout_s: float = 120) -> None:
    """Run `target(*args)` in a fresh interpreter; fail with its exit signal or status if it
    does not return cleanly (`target` must be a module-level function)."""
    process = multiprocessing.get_context("spawn").Process(target=target, args=args)
    process.start()
    process.join(timeout_s)
    if process.is_alive():
        process.kill()
        process.join()
        pytest.fail(f"{target.__name__} did not finish in {timeout_s:.0f}s")
    code = process.exitcode
    assert code is not None
    if code < 0:
        pytest.fail(f"{target.__name__} was killed by {signal.Signals(-code).name}")
    assert code == 0, f"{target.__name__} failed in its child process (status {code})"


@pytest.fixture(scope="session")
def hf_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random llama (2 layers, hidden 64) with a byte-level BPE tokenizer and ChatML."""
    path = tmp_path_factory.mktemp("hf-tiny-llama")
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(CORPUS * 10, trainer)
    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    tokenizer.chat_template = CHATML
    tokenizer.save_pretrained(path)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(path)
    return path
