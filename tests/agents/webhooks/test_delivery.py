"""Webhooks on the real database with a real receiver: the outbox is written with the event,
deliveries verify with the Standard Webhooks reference library, failures are retried with the
same id, a worker that dies mid-delivery leaves it to be sent again, and one endpoint's fault
never holds up another's."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text
from standardwebhooks import Webhook as Verifier

from agents import agent_store
from agents.records import NewAgent
from agents.webhooks import store
from agents.webhooks.delivery import Deliverer, backoff_s
from agents.webhooks.records import NewWebhook
from agents.worker.cleaner import Cleaner, Retention
from core.config import Settings
from core.db import transaction
from core.secrets import SecretBox
from inference.client.scripted import ScriptedModel, text_reply, tool_calls_reply
from tests.agents.conftest import World
from tests.agents.webhooks.receiver import Receiver, receiver


@pytest.fixture
def hook_settings(loop_settings: Settings) -> Settings:
    return loop_settings.model_copy(
        update={"webhook_allowed_hosts": ("127.0.0.1",), "webhook_timeout_s": 2.0}
    )


@pytest.fixture
def endpoint() -> Iterator[Receiver]:
    with receiver() as found:
        yield found


def subscribe(world: World, settings: Settings, url: str, **fields: Any) -> str:
    new = NewWebhook(url=url, events=fields.pop("events", ("run.succeeded",)), **fields)
    with transaction(world.engine) as session:
        _, secret = store.create_webhook(
            session, SecretBox.from_settings(settings), world.tenant_id, new
        )
    return secret


def finish_a_run(world: World, reply: str = "Hi there") -> uuid.UUID:
    run = world.message("hello")
    world.executor(ScriptedModel([text_reply(reply)])).execute(run.id)
    return run.id


def make_due(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE webhook_deliveries SET next_attempt_at = now() WHERE status = 'pending'")
        )


def test_a_finished_run_is_delivered_signed_to_the_endpoints_that_want_it(
    world: World, hook_settings: Settings, endpoint: Receiver
) -> None:
    secret = subscribe(world, hook_settings, endpoint.url)
    subscribe(world, hook_settings, endpoint.url, events=("run.failed",))  # does not want it
    run_id = finish_a_run(world)

    assert Deliverer(world.engine, hook_settings).run_once() == 1
    (got,) = endpoint.received
    payload = Verifier(secret).verify(got.body, got.headers)  # the reference verifier
    assert payload["type"] == "run.succeeded"
    assert payload["data"]["run_id"] == str(run_id)
    assert payload["data"]["output"] == "Hi there"
    assert payload["data"]["agent_id"] == str(world.agent_id)
    assert got.headers["webhook-id"].startswith(f"evt_{run_id.hex}_")
    with pytest.raises(Exception, match="signature"):
        Verifier(secret).verify(got.body.replace(b"Hi", b"Ho"), got.headers)
    assert Deliverer(world.engine, hook_settings).run_once() == 0  # delivered once


def test_an_agent_filter_and_a_disabled_endpoint_get_nothing(
    world: World, hook_settings: Settings, endpoint: Receiver
) -> None:
    subscribe(world, hook_settings, endpoint.url, enabled=False)
    with transaction(world.engine) as session:
        other = agent_store.create_agent(
            session, world.tenant_id, NewAgent(name="other", model="local", max_steps=2)
        )
    subscribe(world, hook_settings, endpoint.url, agent_id=other.id)
    finish_a_run(world)
    assert Deliverer(world.engine, hook_settings).run_once() == 0
    assert endpoint.received == []


def test_a_receiver_failing_three_times_gets_the_event_again_with_the_same_id(
    world: World, hook_settings: Settings, endpoint: Receiver
) -> None:
    endpoint.statuses = [500, 503, 429]
    secret = subscribe(world, hook_settings, endpoint.url)
    finish_a_run(world)
    deliverer = Deliverer(world.engine, hook_settings, rng=random.Random(1))  # noqa: S311
    for _ in range(4):
        assert deliverer.run_once() == 1
        make_due(world.engine)  # skip the backoff
    assert deliverer.run_once() == 0
    ids = {r.headers["webhook-id"] for r in endpoint.received}
    assert len(endpoint.received) == 4
    assert len(ids) == 1
    for got in endpoint.received:
        Verifier(secret).verify(got.body, got.headers)
    with transaction(world.engine) as session:
        (hook,) = store.list_webhooks(session, world.tenant_id, limit=5, after=None)
        (delivery,) = store.list_deliveries(
            session, world.tenant_id, hook.id, status=None, limit=5, before=None
        )
    assert delivery.status == "succeeded"
    assert [t.status_code for t in delivery.tries] == [500, 503, 429, 200]
    assert all(t.latency_ms is not None for t in delivery.tries)


def test_backoff_grows_and_a_delivery_past_its_age_fails(
    world: World, hook_settings: Settings
) -> None:
    rng = random.Random(0)  # noqa: S311
    waits = [backoff_s(n, rng) for n in range(1, 10)]
    assert waits[0] < 6
    assert waits[1] > waits[0]
    assert 4 * 3600 * 0.8 <= waits[-1] <= 4 * 3600 * 1.2
    short = hook_settings.model_copy(update={"webhook_max_age_s": 1.0})
    subscribe(world, short, "http://127.0.0.1:9/nothing-listens")
    finish_a_run(world)
    assert Deliverer(world.engine, short).run_once() == 1
    with transaction(world.engine) as session:
        (hook,) = store.list_webhooks(session, world.tenant_id, limit=5, after=None)
        (delivery,) = store.list_deliveries(
            session, world.tenant_id, hook.id, status=None, limit=5, before=None
        )
    assert delivery.status == "failed"
    assert "ConnectError" in (delivery.tries[0].error or "")


def test_a_worker_dying_mid_delivery_leaves_it_to_be_sent_again(
    world: World, hook_settings: Settings, endpoint: Receiver
) -> None:
    subscribe(world, hook_settings, endpoint.url)
    finish_a_run(world)
    dead = Deliverer(world.engine, hook_settings)
    (claimed,) = dead.claim(4)  # ... and the process dies before it sends or records
    assert Deliverer(world.engine, hook_settings).run_once() == 0  # leased: not sent twice
    with world.engine.begin() as conn:  # the lease passes
        conn.execute(text("UPDATE webhook_deliveries SET next_attempt_at = now()"))
    assert Deliverer(world.engine, hook_settings).run_once() == 1
    (got,) = endpoint.received
    assert got.headers["webhook-id"] == claimed.event_id


def test_a_hanging_endpoint_does_not_hold_up_another(
    world: World, hook_settings: Settings, endpoint: Receiver
) -> None:
    import threading

    with receiver() as slow:
        slow.hold = threading.Event()
        subscribe(world, hook_settings, slow.url)
        subscribe(world, hook_settings, endpoint.url)
        deliverer = Deliverer(
            world.engine, hook_settings.model_copy(update={"webhook_poll_s": 0.05})
        )
        deliverer.start()
        try:
            finish_a_run(world)
            assert endpoint.arrived.wait(10), "the healthy endpoint waited on the hanging one"
            assert slow.arrived.wait(10)
            assert not slow.hold.is_set()  # still hanging while the other was served
        finally:
            slow.hold.set()
            deliverer.stop()


def test_requires_action_and_failures_are_events_too(
    world: World, hook_settings: Settings, endpoint: Receiver
) -> None:
    from agents.records import ApprovalPolicy

    world.update_agent(approval=ApprovalPolicy(tools=("calculator",)))
    subscribe(world, hook_settings, endpoint.url, events=("run.requires_action", "run.succeeded"))
    run = world.message("6*7?")
    world.executor(
        ScriptedModel([tool_calls_reply(("calculator", {"expression": "6*7"}))])
    ).execute(run.id)
    assert world.run(run.id).status == "requires_action"
    assert Deliverer(world.engine, hook_settings).run_once() == 1
    payload = json.loads(endpoint.received[0].body)
    assert payload["type"] == "run.requires_action"
    assert payload["data"]["calls"][0]["name"] == "calculator"


def test_the_cleaner_deletes_ended_deliveries_after_their_retention(
    world: World, hook_settings: Settings, endpoint: Receiver
) -> None:
    subscribe(world, hook_settings, endpoint.url)
    finish_a_run(world)
    finish_a_run(world, "Again")
    assert Deliverer(world.engine, hook_settings).run_once() == 1  # one per endpoint a round
    with world.engine.begin() as conn:
        conn.execute(text("UPDATE webhook_deliveries SET created_at = now() - interval '8 days'"))
    cleaned = Cleaner(world.engine, Retention.of(hook_settings)).run_once()
    assert cleaned.webhook_deliveries == 1  # the delivered one; the pending one stays
    with world.engine.connect() as conn:
        left = conn.execute(text("SELECT status FROM webhook_deliveries")).scalars().all()
        attempts = conn.execute(text("SELECT count(*) FROM webhook_attempts")).scalar_one()
    assert left == ["pending"]
    assert attempts == 0
