"""`Runs`, the facade the routes read runs through, on the real embedded Postgres: a run, its
steps and a session's runs, paged newest first, and nothing of another tenant's."""

from __future__ import annotations

import pytest

from agents.runs.facade import Runs
from core.errors import NotFound
from inference.client.scripted import ScriptedModel, text_reply
from tests.agents.conftest import World, WorldFactory


def test_a_run_and_its_steps(world: World) -> None:
    run = world.message("hello")
    world.executor(ScriptedModel([text_reply("Hi there.")])).execute(run.id)
    runs = Runs(world.engine)
    stored = runs.get(world.tenant_id, run.id)
    assert stored.status == "succeeded"
    steps = runs.steps(world.tenant_id, run.id)
    assert [s.step for s in steps] == [1]


def test_a_sessions_runs_page_newest_first(world: World) -> None:
    made = []
    for text in ("one", "two", "three"):
        run = world.message(text)
        world.executor(ScriptedModel([text_reply("ok")])).execute(run.id)
        made.append(run.id)
    runs = Runs(world.engine)
    first = runs.of_session(world.tenant_id, world.chat.id, limit=2, before=None)
    after = (first[-1].created_at, first[-1].id)
    rest = runs.of_session(world.tenant_id, world.chat.id, limit=2, before=after)
    assert [r.id for r in [*first, *rest]] == made[::-1]


def test_another_tenants_runs_are_not_found(world: World, new_world: WorldFactory) -> None:
    run = world.message("hello")
    other = new_world()
    runs = Runs(world.engine)
    with pytest.raises(NotFound):
        runs.get(other.tenant_id, run.id)
    with pytest.raises(NotFound):
        runs.steps(other.tenant_id, run.id)
    with pytest.raises(NotFound):
        runs.of_session(other.tenant_id, world.chat.id, limit=10, before=None)
