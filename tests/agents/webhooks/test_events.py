"""Batch ends and per-request webhooks on the real database with real receivers: a batch
that completes sends `batch.completed` to the endpoints that want it and to its own
`webhook_url`; a message's `webhook_url` gets its run's events, signed with the tenant's
request signing key (verified with the Standard Webhooks reference library)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from standardwebhooks import Webhook as Verifier

from agents.batches import lifecycle
from agents.records import NewBatch, NewBatchItem
from agents.runs import store as run_store
from agents.webhooks import store
from agents.webhooks.delivery import Deliverer
from agents.webhooks.records import NewWebhook
from core.config import Settings
from core.db import transaction
from core.secrets import SecretBox
from inference.client.scripted import ScriptedModel, text_reply
from tests.agents.conftest import World
from tests.agents.webhooks.receiver import Receiver, receiver


@pytest.fixture
def hook_settings(loop_settings: Settings) -> Settings:
    return loop_settings.model_copy(
        update={"webhook_allowed_hosts": ("127.0.0.1",), "webhook_timeout_s": 2.0}
    )


@pytest.fixture
def endpoints() -> Iterator[tuple[Receiver, Receiver]]:
    with receiver() as subscribed, receiver() as per_request:
        yield subscribed, per_request


def request_key(world: World, settings: Settings) -> str:
    with transaction(world.engine) as session:
        secret, _ = store.rotate_signing_key(
            session, SecretBox.from_settings(settings), world.tenant_id
        )
    return secret


def test_a_completed_batch_is_sent_to_subscribers_and_its_own_url(
    world: World, hook_settings: Settings, endpoints: tuple[Receiver, Receiver]
) -> None:
    subscribed, per_request = endpoints
    box = SecretBox.from_settings(hook_settings)
    with transaction(world.engine) as session:
        _, secret = store.create_webhook(
            session,
            box,
            world.tenant_id,
            NewWebhook(url=subscribed.url, events=("batch.completed",)),
        )
    key = request_key(world, hook_settings)
    with transaction(world.engine) as session:
        batch, started = lifecycle.create_batch(
            session,
            world.tenant_id,
            NewBatch(
                agent_id=world.agent_id,
                items=(NewBatchItem("q1"), NewBatchItem("q2")),
                metadata={"job": "nightly"},
                webhook_url=per_request.url,
            ),
        )
    assert batch.webhook_url == per_request.url
    for run_id in started:
        world.executor(ScriptedModel([text_reply("done")])).execute(run_id)
    deliverer = Deliverer(world.engine, hook_settings)
    assert deliverer.run_once() == 2
    assert deliverer.run_once() == 0
    (to_subscriber,) = subscribed.received
    (to_request,) = per_request.received
    event = Verifier(secret).verify(to_subscriber.body, to_subscriber.headers)
    assert Verifier(key).verify(to_request.body, to_request.headers) == event
    assert event["type"] == "batch.completed"
    assert event["data"]["batch_id"] == str(batch.id)
    assert event["data"]["status"] == "completed"
    assert event["data"]["counts"]["succeeded"] == 2
    assert event["data"]["metadata"] == {"job": "nightly"}
    assert to_subscriber.headers["webhook-id"] == to_request.headers["webhook-id"]
    assert to_request.headers["webhook-id"] == f"evt_batch_{batch.id.hex}"
    with pytest.raises(Exception, match="signature"):  # the endpoint's secret is not the key
        Verifier(secret).verify(to_request.body, to_request.headers)


def test_a_messages_webhook_url_gets_its_runs_events_signed_with_the_request_key(
    world: World, hook_settings: Settings, endpoints: tuple[Receiver, Receiver]
) -> None:
    _, per_request = endpoints
    key = request_key(world, hook_settings)
    with transaction(world.engine) as session:
        run = run_store.create_run(
            session, world.tenant_id, world.chat.id, "hello", webhook_url=per_request.url
        ).run
    other = world.new_session()
    assert run.webhook_url == per_request.url
    world.executor(ScriptedModel([text_reply("Hi there")])).execute(run.id)
    plain = world.message("no hook", chat=other)  # a run without one sends nothing
    world.executor(ScriptedModel([text_reply("ok")])).execute(plain.id)

    assert Deliverer(world.engine, hook_settings).run_once() == 1
    (got,) = per_request.received
    event = Verifier(key).verify(got.body, got.headers)
    assert event["type"] == "run.succeeded"
    assert event["data"]["run_id"] == str(run.id)
    assert event["data"]["output"] == "Hi there"
    rotated = request_key(world, hook_settings)  # a new key signs what is sent from now on
    assert rotated != key
