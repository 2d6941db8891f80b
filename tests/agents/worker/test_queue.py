"""Sending committed runs: a refused send is logged and left to the sweeper, the rest go on."""

from __future__ import annotations

import logging
import uuid

import pytest

from agents.worker.queue import send_committed


def test_a_refused_send_is_logged_and_the_others_still_go(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ids = [uuid.uuid4() for _ in range(3)]
    sent: list[uuid.UUID] = []

    def send(run_id: uuid.UUID) -> None:
        if run_id == ids[1]:
            raise ConnectionError("broker down")
        sent.append(run_id)

    with caplog.at_level(logging.ERROR, logger="agents.worker.queue"):
        assert send_committed(send, ids, "batch run") == 2
    assert sent == [ids[0], ids[2]]
    assert f"batch run {ids[1]} not sent; the sweeper will send it later" in caplog.text


def test_a_send_nothing_resends_says_so(caplog: pytest.LogCaptureFixture) -> None:
    run_id = uuid.uuid4()

    def send(_: uuid.UUID) -> None:
        raise ConnectionError("broker down")

    with caplog.at_level(logging.ERROR, logger="agents.worker.queue"):
        assert send_committed(send, [run_id], "fact extraction for run", swept=False) == 0
    assert "it is not retried" in caplog.text
