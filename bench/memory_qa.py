"""Question answering on LoCoMo conversations, end to end: a model answers from memories
recalled through `MemoryStore.search`, from the whole conversation, and from nothing.

Data and storage are bench/memory_recall.py's: each conversation one user, every turn a
memory written through `MemoryStore.add_many` on a real embedded Postgres with pgvector and
the real embedder. A sample of the non-adversarial questions (`--per-category` of each of
categories 1-4, drawn with `--seed`) is answered by `--model`, a router alias (`local`, the
inference server started here with the bundled model, or any alias of `AGENTMILL_MODELS`),
through `RouterClient` as agents call it (temperature 0, `--max-tokens`), three ways:

  memory        the question's top `--k` memories of its user, oldest first, with their dates
  full-context  the conversation's most recent turns that fit the model's window (counted
                with the router's `count_tokens`: for `local` the server's own tokenizer),
                under their session dates
  no-memory     the question alone

Answers are graded with LoCoMo's token F1 and exact match (bench/memory_qa_score.py: no
stemming, plain F1 in every category). Prints a table, writes bench/results/memory_qa.json
with every answer, and ends with `QA F1 memory ... (model NAME, N questions)`.

    .venv/bin/python -m bench.memory_qa [PATH] [--per-category N] [--seed S] [--model ALIAS]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from agents.runs.tokens import WINDOW_MARGIN, context_window
from bench.memory_qa_score import STEMMING, exact_match, f1
from bench.memory_recall import (
    CATEGORIES,
    DEFAULT_PATH,
    REPO,
    Conversation,
    Question,
    Session,
    Turn,
    embedded_memory,
    load,
    store_all,
)
from bench.tool_calls import servers
from core.config import Settings
from inference.bundled import served_model_id
from inference.client.model_client import ChatRequest, ModelCallError
from inference.client.router import LOCAL_ALIAS, RouterClient
from inference.engines.llama.engine import default_threads

MODES = ("memory", "full-context", "no-memory")
SYSTEM = (
    "You answer questions about a long conversation between two people. "
    "Answer in a few words (a name, a date, a short phrase), with no explanation."
)
Messages = list[dict[str, Any]]


@dataclass
class Sampled:
    """A question drawn for the benchmark, with its conversation."""

    conv: Conversation
    question: Question


@dataclass
class Answer:
    """One model answer and its grades."""

    sample_id: str
    category: int
    mode: str
    question: str
    gold: str
    prediction: str
    f1: float
    exact: bool
    prompt_tokens: int
    seconds: float
    error: str = ""
    """The `ModelCallError` reason when the call failed (the prediction is then empty)."""


def sample(conversations: list[Conversation], per_category: int, seed: int) -> list[Sampled]:
    """Up to `per_category` questions of each non-adversarial category, in conversation
    order (so that full-context prompts of one conversation follow each other)."""
    rng = random.Random(seed)
    pool = [Sampled(c, q) for c in conversations for q in c.questions]
    chosen: list[Sampled] = []
    for category in (1, 2, 3, 4):
        of_category = [s for s in pool if s.question.category == category]
        chosen += rng.sample(of_category, min(per_category, len(of_category)))
    order = {c.sample_id: i for i, c in enumerate(conversations)}
    return sorted(chosen, key=lambda s: order[s.conv.sample_id])


def _day(when: datetime | None) -> str:
    return f"{when.day} {when:%B %Y}" if when else "date unknown"


def _user(text: str, question: Question) -> Messages:
    body = (f"{text}\n\n" if text else "") + f"Question: {question.text}\nShort answer:"
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": body}]


def recall(sampled: list[Sampled], k: int) -> list[list[tuple[datetime, str]]]:
    """Store the sampled questions' conversations, then each question's top-k memories of
    its user (date and text), as bench/memory_recall.py searches them."""
    conversations = list({id(s.conv): s.conv for s in sampled}.values())
    agent_id = uuid.uuid4()
    found = []
    with embedded_memory("agentmill-qa-") as (memory, engine, tenant_id):
        store_all(memory, engine, tenant_id, agent_id, conversations, chunk=0)
        for item in sampled:
            last = max((s.when for s in item.conv.sessions if s.when), default=None)
            hits = memory.search(
                tenant_id,
                item.question.text,
                k=k,
                where={"agent_id": agent_id, "user_id": item.conv.sample_id},
                now=last,
            )
            found.append([(hit.memory.created_at, hit.memory.content) for hit in hits])
    return found


def memory_prompt(question: Question, memories: list[tuple[datetime, str]]) -> Messages:
    """The memories oldest first, each under its date, then the question."""
    lines = [f"[{_day(when)}] {content}" for when, content in sorted(memories)]
    return _user("Memories from the conversation, with their dates:\n" + "\n".join(lines), question)


def _flat(conv: Conversation) -> list[tuple[Session, Turn]]:
    return [(s, t) for s in conv.sessions for t in s.turns]


def transcript(turns: list[tuple[Session, Turn]]) -> str:
    """Turns in order, each session's under a header with its date."""
    lines = ["The conversation, with the date of each session:"]
    current = None
    for session, turn in turns:
        if session is not current:
            lines.append(f"\nSession {session.number} ({_day(session.when)}):")
            current = session
        lines.append(turn.text)
    return "\n".join(lines)


async def fit(client: RouterClient, alias: str, conv: Conversation, limit: int) -> int:
    """How many of the conversation's most recent turns fit in `limit` prompt tokens with
    any of its questions: first from per-line counts, then checked on the whole prompt."""
    turns = _flat(conv)
    headers = [f"\nSession {s.number} ({_day(s.when)}):" for s in conv.sessions]
    lines = [t.text for _, t in turns] + headers
    longest = max(conv.questions, key=lambda q: len(q.text))
    counts = await client.count_tokens(
        alias, [[{"role": "user", "content": text}] for text in ["", *lines]]
    )
    line_cost = [n - counts[0] + 1 for n in counts[1:]]  # + 1: the newline joining it
    header_cost = dict(zip((id(s) for s in conv.sessions), line_cost[len(turns) :], strict=True))
    (base,) = await client.count_tokens(alias, [_user(transcript([]), longest)])
    used, start, seen = base, len(turns), set()
    while start > 0:
        session = turns[start - 1][0]
        extra = line_cost[start - 1] + (header_cost[id(session)] if id(session) not in seen else 0)
        if used + extra > limit:
            break
        used += extra
        seen.add(id(session))
        start -= 1
    while start < len(turns):  # the per-line sum is an estimate: check the real prompt
        (total,) = await client.count_tokens(alias, [_user(transcript(turns[start:]), longest)])
        if total <= limit:
            break
        start += 1
    return len(turns) - start


async def ask(
    client: RouterClient, alias: str, item: Sampled, mode: str, messages: Messages, budget: int
) -> Answer:
    """One answer, timed and graded; a failed call is an empty answer with its reason."""
    question = item.question
    t0 = time.perf_counter()
    prediction, tokens, error = "", 0, ""
    try:
        result = await client.complete(
            ChatRequest(model=alias, messages=messages, temperature=0.0, max_tokens=budget)
        )
        prediction, tokens = (result.content or "").strip(), result.usage.prompt_tokens
    except ModelCallError as exc:
        error = exc.reason
    return Answer(
        item.conv.sample_id,
        question.category,
        mode,
        question.text,
        question.answer,
        prediction,
        f1(prediction, question.answer),
        exact_match(prediction, question.answer),
        tokens,
        time.perf_counter() - t0,
        error,
    )


async def answer_all(
    client: RouterClient,
    alias: str,
    sampled: list[Sampled],
    memories: list[list[tuple[datetime, str]]],
    window: int,
    budget: int,
) -> tuple[list[Answer], dict[str, tuple[int, int]]]:
    """Every question in every mode, one call at a time, mode after mode; also the turns
    that fit per conversation (kept, of all)."""
    answers: list[Answer] = []
    t0 = time.perf_counter()
    for item, found in zip(sampled, memories, strict=True):
        answers.append(
            await ask(client, alias, item, "memory", memory_prompt(item.question, found), budget)
        )
    print(f"  memory: {len(sampled)} answers, {time.perf_counter() - t0:.0f} s", flush=True)
    # Exact counts for `local` (its own tokenizer); litellm's may be a GPT tokenizer's estimate,
    # so other aliases keep the agent loop's margin.
    limit = (window if alias == LOCAL_ALIAS else int(window * WINDOW_MARGIN)) - budget
    fits: dict[str, tuple[int, int]] = {}
    t0 = time.perf_counter()
    for item in sampled:
        conv = item.conv
        if conv.sample_id not in fits:
            fits[conv.sample_id] = (await fit(client, alias, conv, limit), len(_flat(conv)))
        kept = _flat(conv)[len(_flat(conv)) - fits[conv.sample_id][0] :]
        messages = _user(transcript(kept), item.question)
        answers.append(await ask(client, alias, item, "full-context", messages, budget))
    print(f"  full-context: {len(sampled)} answers, {time.perf_counter() - t0:.0f} s", flush=True)
    t0 = time.perf_counter()
    for item in sampled:
        messages = _user("", item.question)
        answers.append(await ask(client, alias, item, "no-memory", messages, budget))
    print(f"  no-memory: {len(sampled)} answers, {time.perf_counter() - t0:.0f} s", flush=True)
    return answers, fits


def summarise(answers: list[Answer]) -> dict[str, dict[str, dict[str, float]]]:
    """Per row (each category, then all) and mode: n, F1, EM, prompt tokens, seconds."""
    rows = [(f"{c} {CATEGORIES[c]}", {c}) for c in sorted({a.category for a in answers})]
    rows.append(("all", set(CATEGORIES)))
    table: dict[str, dict[str, dict[str, float]]] = {}
    for label, cats in rows:
        table[label] = {}
        for mode in MODES:
            group = [a for a in answers if a.mode == mode and a.category in cats]
            table[label][mode] = {
                "n": len(group),
                "f1": statistics.fmean(a.f1 for a in group),
                "em": statistics.fmean(a.exact for a in group),
                "prompt_tokens": statistics.fmean(a.prompt_tokens for a in group),
                "seconds": statistics.fmean(a.seconds for a in group),
                "errors": sum(bool(a.error) for a in group),
            }
    return table


def print_table(table: dict[str, dict[str, dict[str, float]]]) -> None:
    """The markdown table docs/benchmarks.md carries."""
    print("\n| questions | n | " + " | ".join(f"{m} F1 | {m} EM" for m in MODES) + " |")
    print("| --- | ---: |" + " ---: | ---: |" * len(MODES))
    for label, modes in table.items():
        cells = " | ".join(f"{modes[m]['f1']:.3f} | {modes[m]['em']:.3f}" for m in MODES)
        print(f"| {label} | {modes[MODES[0]]['n']:.0f} | {cells} |")
    print("\n| mode | mean prompt tokens | s per answer | failed calls |")
    print("| --- | ---: | ---: | ---: |")
    for mode in MODES:
        row = table["all"][mode]
        print(
            f"| {mode} | {row['prompt_tokens']:.0f} | {row['seconds']:.2f} | {row['errors']:.0f} |"
        )


@contextmanager
def _router(alias: str, threads: int) -> Iterator[tuple[RouterClient, Settings]]:
    """The router the worker builds; for `local`, over an inference server started here."""
    settings = Settings()
    if alias != LOCAL_ALIAS:
        yield RouterClient(settings, served_model_id(settings)), settings
        return
    with servers(threads, "ours") as urls:
        settings = Settings(inference_url=urls["ours"])
        yield RouterClient(settings, served_model_id(settings)), settings


def main() -> None:
    """Sample, recall, answer, grade, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--per-category", type=int, default=15, help="questions per category")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default=LOCAL_ALIAS, help="router alias (see AGENTMILL_MODELS)")
    parser.add_argument("--k", type=int, default=10, help="memories recalled per question")
    parser.add_argument("--max-tokens", type=int, default=32, help="answer budget")
    parser.add_argument("--threads", type=int, default=default_threads(), help="local server")
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/memory_qa.json")
    args = parser.parse_args()
    started = time.perf_counter()
    sampled = sample(load(args.path), args.per_category, args.seed)
    memories = recall(sampled, args.k)
    print(f"[{time.perf_counter() - started:.0f} s] stored and recalled", flush=True)
    with _router(args.model, args.threads) as (client, settings):
        if args.model not in client.aliases:
            parser.error(f"unknown model {args.model!r}; configured: {', '.join(client.aliases)}")
        local = args.model == LOCAL_ALIAS
        name = served_model_id(settings) if local else settings.models[args.model].model
        window = context_window(settings, args.model)
        answers, fits = asyncio.run(
            answer_all(client, args.model, sampled, memories, window, args.max_tokens)
        )
    wall = time.perf_counter() - started

    table = summarise(answers)
    kept = statistics.fmean(k for k, _ in fits.values())
    total = statistics.fmean(n for _, n in fits.values())
    machine = f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"machine: {machine}; file: {args.path.name}; model {args.model} ({name})")
    print(
        f"{len(sampled)} questions (seed {args.seed}, up to {args.per_category} per category); "
        f"memory k {args.k}; max_tokens {args.max_tokens}; temperature 0; "
        f"stemming {'on' if STEMMING else 'off (nltk not installed)'}"
    )
    print(
        f"full-context: window {window} tokens; {kept:.0f} of {total:.0f} turns fit on average "
        f"({kept / total:.0%}), per conversation "
        + ", ".join(f"{sid} {k}/{n}" for sid, (k, n) in fits.items())
    )
    print_table(table)
    print(f"wall {wall:.0f} s")
    result = {
        "machine": machine,
        "file": str(args.path),
        "model": {"alias": args.model, "name": name, "window": window},
        "questions": len(sampled),
        "per_category": args.per_category,
        "seed": args.seed,
        "k": args.k,
        "max_tokens": args.max_tokens,
        "stemming": STEMMING,
        "full_context_turns": {sid: {"kept": k, "of": n} for sid, (k, n) in fits.items()},
        "table": table,
        "wall_s": wall,
        "answers": [asdict(a) for a in answers],
    }
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    overall = table["all"]
    print(
        f"QA F1 memory {overall['memory']['f1']:.3f} full-context "
        f"{overall['full-context']['f1']:.3f} no-memory {overall['no-memory']['f1']:.3f} "
        f"(model {name}, {len(sampled)} questions)"
    )


if __name__ == "__main__":
    main()
