"""Several tool calls in one reply from the bundled model: what `parallel_tool_calls: true`
changes, measured against the same requests without it in the same run.

`agentmill inference` serves the bundled SmolLM2-135M-Instruct; the official `openai` client
sends, at temperature 0, prompts that need two calls ("the weather in Paris and in Rome") and
prompts that need one, each with `tool_choice` auto and required, with and without
`parallel_tool_calls: true`. Per cell: replies that parse (every call names an offered tool
and its arguments fit the schema), mean calls per reply, replies with two or more calls,
replies holding the same call twice, and, for the two-call prompts, replies with both of the
expected calls (right function, right arguments ignoring case).

    .venv/bin/python -m bench.parallel_tool_calls [--threads N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import openai

from bench.tool_calls import servers
from inference.bundled import BUNDLED_MODEL_ID
from inference.engines.llama.engine import default_threads

WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "The city's name."}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}
TIME: Any = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "The local time in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}
PRICE: Any = {
    "type": "function",
    "function": {
        "name": "get_stock_price",
        "description": "The latest price of a stock by its ticker symbol.",
        "parameters": {
            "type": "object",
            "properties": {"ticker": {"type": "string"}},
            "required": ["ticker"],
            "additionalProperties": False,
        },
    },
}
TOOLS = [WEATHER, TIME, PRICE]

TWO: list[tuple[str, list[tuple[str, dict[str, str]]]]] = [
    (f"What is the weather in {a} and in {b}?",
     [("get_weather", {"city": a}), ("get_weather", {"city": b})])
    for a, b in [("Paris", "Rome"), ("Tokyo", "Berlin"), ("Madrid", "Oslo"), ("Cairo", "Lima")]
] + [
    (f"What time is it in {a}, and what is the weather there?",
     [("get_time", {"city": a}), ("get_weather", {"city": a})])
    for a in ("London", "Sydney")
] + [
    (f"Get the stock prices of {a} and {b}.",
     [("get_stock_price", {"ticker": a}), ("get_stock_price", {"ticker": b})])
    for a, b in [("AAPL", "MSFT"), ("TSLA", "AMZN")]
]  # fmt: skip
ONE: list[str] = [
    "What is the weather in Vienna?",
    "What time is it in Chicago?",
    "Get the stock price of NVDA.",
    "How warm is it in Athens right now?",
    "What's the price of GOOG?",
    "Tell me the local time in Seoul.",
    "Is it raining in Dublin?",
    "What does IBM trade at?",
]


@dataclass
class Cell:
    """The replies of one (prompts, tool_choice, parallel) combination."""

    parsed: int = 0
    replies: int = 0
    calls: list[int] = field(default_factory=list)
    duplicates: int = 0
    both_expected: int = 0
    seconds: list[float] = field(default_factory=list)


def _calls(reply: Any) -> list[tuple[str, dict[str, Any]]] | None:
    made = []
    for call in reply.choices[0].message.tool_calls or []:
        try:
            args = json.loads(call.function.arguments)
        except json.JSONDecodeError:
            return None
        if call.function.name not in {t["function"]["name"] for t in TOOLS}:
            return None
        if not isinstance(args, dict) or not all(isinstance(v, str) for v in args.values()):
            return None
        made.append((call.function.name, args))
    return made


def _same(a: tuple[str, dict[str, Any]], b: tuple[str, dict[str, str]]) -> bool:
    lowered = {k: str(v).strip().lower() for k, v in a[1].items()}
    return a[0] == b[0] and lowered == {k: v.lower() for k, v in b[1].items()}


def run_cell(
    client: openai.OpenAI,
    prompts: list[tuple[str, list[tuple[str, dict[str, str]]] | None]],
    choice: str,
    parallel: bool,
) -> Cell:
    cell = Cell()
    for prompt, expected in prompts:
        extra: dict[str, Any] = {"parallel_tool_calls": True} if parallel else {}
        request: dict[str, Any] = {
            "model": BUNDLED_MODEL_ID,
            "messages": [{"role": "user", "content": prompt}],
            "tools": TOOLS,
            "tool_choice": choice,
            "temperature": 0,
            "max_tokens": 256,
            **extra,
        }
        started = time.perf_counter()
        reply = client.chat.completions.create(**request)
        cell.seconds.append(time.perf_counter() - started)
        cell.replies += 1
        made = _calls(reply)
        if made is None:
            continue
        cell.parsed += 1
        cell.calls.append(len(made))
        keys = [json.dumps(c, sort_keys=True) for c in made]
        cell.duplicates += len(keys) != len(set(keys))
        if expected is not None and all(any(_same(m, e) for m in made) for e in expected):
            cell.both_expected += 1
    return cell


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=default_threads())
    args = parser.parse_args()
    two: list[tuple[str, list[tuple[str, dict[str, str]]] | None]] = [(p, e) for p, e in TWO]
    one: list[tuple[str, list[tuple[str, dict[str, str]]] | None]] = [(p, None) for p in ONE]
    rows = []
    with servers(args.threads, "ours") as urls:
        client = openai.OpenAI(base_url=urls["ours"], api_key="unused", max_retries=0)
        for label, prompts in (("two calls needed", two), ("one call needed", one)):
            for choice in ("auto", "required"):
                for parallel in (False, True):
                    cell = run_cell(client, prompts, choice, parallel)
                    rows.append((label, choice, parallel, cell))
    print(
        "| prompts | tool_choice | parallel_tool_calls | parsed | mean calls | replies with 2+ "
        "calls | same call twice | both expected calls | median s |"
    )
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, choice, parallel, cell in rows:
        mean = statistics.fmean(cell.calls) if cell.calls else 0.0
        several = sum(n >= 2 for n in cell.calls)
        both = f"{cell.both_expected}/{cell.replies}" if label.startswith("two") else ""
        print(
            f"| {label} | {choice} | {'true' if parallel else 'unset'} | "
            f"{cell.parsed}/{cell.replies} | {mean:.2f} | {several}/{cell.replies} | "
            f"{cell.duplicates} | {both} | {statistics.median(cell.seconds):.2f} |"
        )


if __name__ == "__main__":
    main()
