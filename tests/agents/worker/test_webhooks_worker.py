"""Webhooks from real Celery workers: a run on the bundled model ends, the worker's deliverer
sends the event to a receiver started by the test; the worker is killed while the receiver
holds the delivery, and another worker sends it again with the same webhook-id."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine
from standardwebhooks import Webhook as Verifier

from agents.webhooks import store
from agents.webhooks.records import NewWebhook
from agents.worker.queue import RunQueue, make_celery
from core.config import Settings
from core.db import transaction
from core.secrets import SecretBox
from tests.agents.webhooks.receiver import receiver
from tests.agents.worker.test_main import make_agent, new_session, send, wait_finished, worker_env
from tests.services import WorkerFactory

pytestmark = pytest.mark.timeout(300)
SECRET_KEY = "webhook-e2e-key"


def test_a_worker_killed_mid_delivery_leaves_it_to_another_with_the_same_id(
    engine: Engine,
    database_url: str,
    redis_url: str,
    inference_url: str,
    start_worker: WorkerFactory,
    tmp_path: Path,
) -> None:
    env = worker_env(
        database_url,
        redis_url,
        inference_url,
        AGENTMILL_WEBHOOK_ALLOWED_HOSTS='["127.0.0.1"]',
        AGENTMILL_WEBHOOK_TIMEOUT_S="3",
        AGENTMILL_WEBHOOK_POLL_S="0.2",
        AGENTMILL_SECRET_KEY=SECRET_KEY,
    )
    with receiver() as endpoint:
        held = endpoint.hold = threading.Event()  # the first delivery hangs until the kill
        tenant_id, agent_id = make_agent(engine, [], max_steps=1)
        box = SecretBox.from_settings(Settings(home=tmp_path, secret_key=SECRET_KEY))
        with transaction(engine) as session:
            _, secret = store.create_webhook(
                session, box, tenant_id, NewWebhook(url=endpoint.url, events=("run.succeeded",))
            )
        doomed = start_worker(env)
        queue = RunQueue(make_celery(Settings(broker_url=redis_url), database_url))
        chat = new_session(engine, tenant_id, agent_id, "ann")
        run = send(engine, queue, tenant_id, chat, "Say hello.")
        assert wait_finished(engine, tenant_id, run.id, 120).status == "succeeded"
        assert endpoint.arrived.wait(30), doomed.output()
        doomed.kill()  # SIGKILL while the receiver holds the request: nothing is recorded
        endpoint.arrived.clear()
        endpoint.hold = None
        held.set()
        start_worker(env)
        assert endpoint.arrived.wait(60)  # after the lease (timeout + 5 s) passed
        time.sleep(1)

    first, second, *rest = endpoint.received
    assert rest == []
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    event = Verifier(secret).verify(second.body, second.headers)
    assert event["type"] == "run.succeeded"
    assert event["data"]["run_id"] == str(run.id)
    with transaction(engine) as session:
        (hook,) = store.list_webhooks(session, tenant_id, limit=5, after=None)
        (delivery,) = store.list_deliveries(
            session, tenant_id, hook.id, status=None, limit=5, before=None
        )
    assert delivery.status == "succeeded"
    assert delivery.attempts == 2
    assert [t.attempt for t in delivery.tries] == [2]  # the killed attempt left no record
