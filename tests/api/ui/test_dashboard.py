"""The dashboard in a real headless Chromium against the real API: signing in, agents, the
playground with the bundled model (streamed tokens, a tool call inline), a run's steps, runs
filtered, memories searched, deleted and erased, core blocks edited with history, a batch
cancelled, another tenant's ids, and /docs offline."""

from __future__ import annotations

import itertools
import re
import uuid
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import Engine

from core.db import transaction
from core.tenants import create_key, ensure_tenant
from tests.api.ui.conftest import Problems, open_section, screenshot, sign_in

pytestmark = pytest.mark.timeout(400)

MODEL_WAIT_MS = 240_000
"""Longest a run of the bundled model on two CPU cores may take in these tests."""


def _rest(base_url: str, key: str, method: str, path: str, body: Any = None) -> Any:
    response = httpx.request(
        method, base_url + path, json=body, headers={"Authorization": f"Bearer {key}"}, timeout=60
    )
    assert response.is_success, response.text
    return response.json() if response.content else None


def _send_in_new_session(page: Page, url: str, key: str, agent_id: str, content: str) -> None:
    """Sign in, open the agent in the playground, start a session and send `content`."""
    sign_in(page, url, key)
    page.goto(f"{url}/ui/#/chat/{agent_id}")
    page.get_by_role("button", name="New session").click()
    page.get_by_label("Message", exact=True).fill(content)
    page.get_by_role("button", name="Send").click()


def test_create_an_agent_chat_with_a_tool_and_open_the_run(
    page: Page, live_url: str, api_key: str, problems: Problems
) -> None:
    sign_in(page, live_url, api_key)
    expect(page.get_by_text("No agents yet")).to_be_visible()
    page.get_by_role("link", name="New agent").click()
    page.get_by_label("Name").fill("calc")
    page.get_by_label("Instructions").fill("You are a helpful assistant. Use the calculator.")
    page.get_by_label("Tools", exact=True).fill("calculator")
    page.get_by_label("First step").select_option("required")
    page.get_by_label("Most steps per run").fill("2")
    page.get_by_label("Extract durable facts after a run").uncheck()
    screenshot(page, "agent-form")
    page.get_by_role("button", name="Create agent").click()
    expect(page.get_by_role("heading", name="calc")).to_be_visible()
    expect(page.get_by_label("Tools", exact=True)).to_have_value("calculator")

    open_section(page, "Agents")
    expect(page.get_by_role("link", name="calc")).to_be_visible()
    screenshot(page, "agents")
    page.get_by_role("link", name="Chat").click()
    page.get_by_label("End user").fill("ann")
    page.get_by_role("button", name="New session").click()
    page.get_by_label("Message", exact=True).fill("Please compute 12*7 with the calculator.")
    page.get_by_role("button", name="Send").click()
    # While the run goes on: its tool call, inline, with a Cancel button beside the composer.
    call = page.locator(".turn .tool-call").first
    call.wait_for(timeout=MODEL_WAIT_MS)
    expect(call.locator(".tool-name")).to_have_text("calculator")
    screenshot(page, "playground-live")
    expect(page.get_by_role("button", name="Cancel")).to_be_visible()
    expect(page.get_by_role("button", name="Send")).to_be_visible(timeout=MODEL_WAIT_MS)
    screenshot(page, "playground")
    # Ended: the transcript holds the message, the call with its result, and the outcome.
    agent = page.locator(".message-assistant")
    expect(page.locator(".message-user p")).to_have_text("Please compute 12*7 with the calculator.")
    expect(agent.locator(".tool-call").first).to_contain_text("Result")
    outcome = agent.locator("p.error", has_text="No answer").or_(agent.locator("p:not(.error)"))
    expect(outcome.first).to_be_visible()

    agent.locator("a", has_text="run").first.click()
    expect(page.get_by_role("heading", name=re.compile(r"^Run "))).to_be_visible()
    expect(page.locator(".step").first).to_contain_text("Step 1")
    page.get_by_text("Context the model saw").first.click()
    context = page.locator(".context").first
    expect(context).to_contain_text("Use the calculator.")
    expect(context).to_contain_text("Please compute 12*7")
    expect(page.locator(".step .tool-call").first).to_contain_text("calculator")
    expect(page.get_by_text(re.compile(r"^\d+ events$"))).to_be_visible()
    screenshot(page, "run", full_page=True)

    open_section(page, "Runs")
    expect(page.locator("tbody tr")).to_have_count(1)
    page.get_by_label("Status").select_option("failed")
    expect(page.get_by_text("No runs match.")).to_be_visible()
    page.get_by_label("Status").select_option("")
    page.get_by_label("End user").fill("ann")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.locator("tbody tr")).to_contain_text("calc")
    screenshot(page, "runs")
    assert problems.found == []


def test_a_tool_call_approved_in_the_playground(
    page: Page, live_url: str, api_key: str, problems: Problems
) -> None:
    agent = _rest(
        live_url,
        api_key,
        "POST",
        "/v1/agents",
        {
            "name": "careful",
            "instructions": "Use the calculator for arithmetic.",
            "tools": ["calculator"],
            "tool_choice": "required",
            "approval": {"tools": ["calculator"], "timeout_s": 600},
            "max_steps": 2,
            "memory": {"extract_facts": False, "save_episodes": False},
        },
    )
    _send_in_new_session(
        page, live_url, api_key, agent["id"], "Please compute 12*7 with the calculator."
    )
    decision = page.get_by_role("group", name="Decision on calculator")
    decision.wait_for(timeout=MODEL_WAIT_MS)
    expect(decision).to_contain_text("Approve this tool call?")
    screenshot(page, "approval")
    decision.get_by_role("button", name="Approve").click()
    # The run goes on with the call approved: it runs, and its result shows inline.
    expect(page.locator(".turn .tool-call .tool-name", has_text="calculator").first).to_be_visible()
    expect(page.locator(".tool-call", has_text="Result").first).to_be_visible(timeout=MODEL_WAIT_MS)
    expect(page.get_by_role("button", name="Send")).to_be_visible(timeout=MODEL_WAIT_MS)
    runs = _rest(live_url, api_key, "GET", f"/v1/runs?agent_id={agent['id']}")["data"]
    steps = _rest(live_url, api_key, "GET", f"/v1/runs/{runs[0]['id']}/steps")["data"]
    assert steps[0]["tool_calls"][0]["approval"] == "approved"
    assert steps[0]["tool_calls"][0]["result"] is not None
    assert problems.found == []


# Records every text the live turn's streamed paragraph shows, before the page loads.
_WATCH_STREAM = """
window.streamed = [];
new MutationObserver(() => {
  for (const node of document.querySelectorAll('.turn .streamed, .turn .answer')) {
    const text = node.textContent;
    if (window.streamed[window.streamed.length - 1] !== text) window.streamed.push(text);
  }
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


def test_the_answer_streams_in_token_by_token(
    page: Page, live_url: str, api_key: str, problems: Problems
) -> None:
    agent = _rest(
        live_url,
        api_key,
        "POST",
        "/v1/agents",
        {
            "name": "talker",
            "instructions": "Answer in two or three sentences.",
            "tool_choice": "none",
            "max_steps": 1,
            "memory": {"extract_facts": False, "save_episodes": False},
        },
    )
    page.add_init_script(_WATCH_STREAM)
    _send_in_new_session(page, live_url, api_key, agent["id"], "Tell me about the sea.")
    expect(page.get_by_role("button", name="Send")).to_be_visible(timeout=MODEL_WAIT_MS)
    texts: list[str] = page.evaluate("window.streamed")
    growing = [t for t in texts if t]
    # Many partial texts, each extending the one before: tokens arrived as they were made.
    assert len(growing) >= 3, texts
    assert all(b.startswith(a) for a, b in itertools.pairwise(growing[:-1])), growing
    answer = page.locator(".message-assistant p").last
    expect(answer).to_have_text(growing[-1].strip() or re.compile(".+"))
    assert problems.found == []


def test_a_run_cancelled_from_the_playground(
    page: Page, live_url: str, api_key: str, problems: Problems
) -> None:
    agent = _rest(
        live_url,
        api_key,
        "POST",
        "/v1/agents",
        {"name": "storyteller", "tool_choice": "none", "memory": {"extract_facts": False}},
    )
    _send_in_new_session(
        page, live_url, api_key, agent["id"], "Write a very long story about a lighthouse."
    )
    cancel = page.get_by_role("button", name="Cancel")
    expect(cancel).to_be_enabled()  # once the run's first event named it
    cancel.click()
    expect(page.get_by_text("No answer: the run ended cancelled")).to_be_visible(
        timeout=MODEL_WAIT_MS
    )
    (run,) = _rest(live_url, api_key, "GET", f"/v1/runs?agent_id={agent['id']}")["data"]
    assert run["status"] == "cancelled"
    assert problems.found == []


def test_memories_search_delete_blocks_and_erase(
    page: Page, quiet_url: str, api_key: str, problems: Problems
) -> None:
    agent = _rest(quiet_url, api_key, "POST", "/v1/agents", {"name": "keeper"})
    memories = f"/v1/agents/{agent['id']}/memories"
    for content, user in [
        ("Ann's favourite colour is teal.", "ann"),
        ("Ann works as a pilot.", "ann"),
        ("Bob's favourite colour is red.", "bob"),
    ]:
        _rest(quiet_url, api_key, "POST", memories, {"content": content, "user_id": user})
    block = {"value": "Ann, plan pro.", "user_id": "ann"}
    _rest(quiet_url, api_key, "PUT", f"/v1/agents/{agent['id']}/blocks/human", block)
    page.on("dialog", lambda dialog: dialog.accept())
    sign_in(page, quiet_url, api_key)

    open_section(page, "Memories")
    page.get_by_label("Agent").select_option(agent["id"])
    expect(page.locator("tbody tr")).to_have_count(3)  # every user's, newest first
    page.get_by_label("End user").fill("ann")
    page.get_by_label("Search").fill("what colour does ann like")
    page.get_by_role("button", name="Search").click()
    rows = page.locator("table.memories tbody tr")
    expect(rows.first).to_contain_text("Ann's favourite colour is teal.")
    expect(page.get_by_text("Bob's favourite colour is red.")).to_have_count(0)
    expect(page.get_by_role("form", name="Block human")).to_contain_text("v1")
    screenshot(page, "memories", full_page=True)

    rows.first.get_by_role("button", name=re.compile("^Delete memory")).click()
    expect(page.get_by_text("Ann's favourite colour is teal.")).to_have_count(0)
    expect(rows).to_have_count(1)

    human = page.get_by_role("form", name="Block human")
    human.get_by_label("Value of human").fill("Ann, plan enterprise.")
    human.get_by_role("button", name="Save").click()
    expect(page.get_by_role("form", name="Block human")).to_contain_text("v2")
    page.get_by_role("form", name="Block human").get_by_role("button", name="History").click()
    history = page.locator(".history li")
    expect(history).to_have_count(2)
    expect(history.nth(1)).to_contain_text("Ann, plan enterprise.")

    page.get_by_role("button", name="Erase ann").click()
    expect(page.get_by_role("status")).to_contain_text("Erased 1 memories, 1 blocks")
    page.get_by_label("Search").fill("")
    page.get_by_role("button", name="List").click()
    expect(page.get_by_text("No memories.")).to_be_visible()
    bob = _rest(quiet_url, api_key, "GET", memories, None)["data"]
    assert [m["content"] for m in bob] == ["Bob's favourite colour is red."]
    assert problems.found == []


def test_a_batch_in_progress_and_cancelled(
    page: Page, quiet_url: str, api_key: str, problems: Problems
) -> None:
    # No worker serves this API: the items stay queued until the batch is cancelled.
    agent = _rest(quiet_url, api_key, "POST", "/v1/agents", {"name": "bulk"})
    items = [{"input": f"question {n}"} for n in range(3)]
    body = {"agent_id": agent["id"], "items": items}
    batch = _rest(quiet_url, api_key, "POST", "/v1/batches", body)
    page.on("dialog", lambda dialog: dialog.accept())
    sign_in(page, quiet_url, api_key)
    open_section(page, "Batches")
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.locator("tbody tr")).to_contain_text("0/3")
    page.locator("tbody tr a").click()
    expect(page.get_by_role("heading", name=re.compile(r"^Batch "))).to_be_visible()
    expect(page.get_by_text("No item has finished yet.")).to_be_visible()
    screenshot(page, "batch")
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator(".badge").first).to_have_text("cancelled")
    expect(page.locator("tbody tr")).to_have_count(3)
    expect(page.locator("tbody .badge", has_text="cancelled")).to_have_count(3)
    got = _rest(quiet_url, api_key, "GET", f"/v1/batches/{batch['id']}")
    assert (got["status"], got["counts"]["cancelled"]) == ("cancelled", 3)
    assert problems.found == []


def test_a_wrong_key_and_another_tenants_ids(
    page: Page, quiet_url: str, api_key: str, engine: Engine, problems: Problems
) -> None:
    with transaction(engine) as session:
        tenant_id, _ = ensure_tenant(session, "globex")
        other_key = create_key(session, tenant_id, name="other")
    theirs = _rest(quiet_url, other_key, "POST", "/v1/agents", {"name": "globex-secret"})
    page.goto(f"{quiet_url}/ui/")
    page.get_by_label("API key").fill("am_not_a_real_key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("That API key is not valid.")
    page.get_by_label("API key").fill(api_key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("No agents yet")).to_be_visible()
    expect(page.get_by_text("globex-secret")).to_have_count(0)
    page.goto(f"{quiet_url}/ui/#/agents/{theirs['id']}")
    expect(page.get_by_role("alert")).to_contain_text("not found")
    page.goto(f"{quiet_url}/ui/#/runs/{uuid.uuid4()}")
    expect(page.get_by_role("alert")).to_contain_text("not found")
    # The key lives in this tab only: signing out forgets it.
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("API key")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0
    assert problems.found == []


def test_the_api_reference_works_offline(page: Page, quiet_url: str, problems: Problems) -> None:
    page.goto(f"{quiet_url}/docs")
    expect(page.get_by_text("/v1/agents/{agent_id}/memories").first).to_be_visible()
    screenshot(page, "docs")
    assert problems.found == []
