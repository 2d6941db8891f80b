"""Fixtures: the real bundled model on llama.cpp, and a tiny random llama for transformers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from inference.chat import CHATML
from inference.llama_engine import LlamaEngine

CORPUS = [
    "The weather in Paris is sunny today; in Rome it rains. Héllo wörld, ça va? ✓ 日本",
    '{"name": "get_weather", "arguments": {"city": "Paris", "days": 3}}',
    "<tool_call>Hello, how are you? I am fine, thank you.</tool_call>",
]


@pytest.fixture(scope="session")
def llama_engine() -> LlamaEngine:
    """The bundled SmolLM2 on llama.cpp with 4 slots (closed by the server that serves it)."""
    return LlamaEngine(slots=4, context_per_slot=2048)


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
