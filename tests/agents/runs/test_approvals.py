"""Human approval of tool calls on the real embedded Postgres, the loop driven by a scripted
model: a run pauses in requires_action without a worker, decisions (approve, deny, edit)
resume it on any worker, a wait expires, and the state machine refuses what it must."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import func, text, update

from agents.records import ApprovalPolicy, CallDecision
from agents.runs import approvals
from agents.runs import store as run_store
from agents.tables import RunRow, ToolCallRow
from agents.worker.sweeper import sweep_once
from core.db import transaction
from core.errors import Conflict, NotFound
from inference.client.scripted import ScriptedModel, text_reply, tool_calls_reply
from tests.agents.conftest import World, WorldFactory

SENT: list[str] = []


def transfer(account: str, amount: int) -> str:
    """Move money (a tool with effects: it must not run unapproved).

    Args:
        account: Where to.
        amount: How much.
    """
    SENT.append(f"{account}:{amount}")
    return f"sent {amount} to {account}"


@pytest.fixture
def bank(new_world: WorldFactory) -> Iterator[World]:
    """A world whose agent needs approval for `transfer`."""
    SENT.clear()
    world = new_world(extra_tools=[transfer])
    world.update_agent(approval=ApprovalPolicy(tools=("transfer",), timeout_s=600))
    yield world
    SENT.clear()


def decide(world: World, run_id: uuid.UUID, *decisions: CallDecision) -> bool:
    with transaction(world.engine) as session:
        return approvals.decide(session, world.tenant_id, run_id, decisions)


def paid_run(world: World, *, calls: int = 1) -> tuple[uuid.UUID, ScriptedModel]:
    run = world.message("pay alice")
    asked = [("transfer", {"account": f"acct-{i}", "amount": 5 + i}) for i in range(calls)]
    model = ScriptedModel([tool_calls_reply(*asked), text_reply("done")])
    world.executor(model).execute(run.id)
    return run.id, model


def test_a_call_that_needs_approval_pauses_the_run_without_a_worker(bank: World) -> None:
    run_id, model = paid_run(bank)

    run = bank.run(run_id)
    assert run.status == "requires_action"
    assert SENT == []
    assert len(model.requests) == 1
    with transaction(bank.engine) as session:
        row = session.get(RunRow, run_id)
        assert row is not None
        assert (row.lease_owner, row.lease_expires_at) == (None, None)
    action = run.required_action
    assert action is not None
    assert action.step == 1
    (call,) = action.calls
    assert (call.call_id, call.name) == ("call_1", "transfer")
    assert json.loads(call.arguments) == {"account": "acct-0", "amount": 5}
    assert call.parameters["properties"]["amount"]["type"] == "integer"
    (event,) = [e for e in bank.events(run_id) if e.type == "run.requires_action"]
    assert event.data["calls"][0]["call_id"] == "call_1"
    assert event.data["expires_at"] == action.expires_at.isoformat()
    assert [s.tool_calls[0].approval for s in bank.steps(run_id)] == ["pending"]


def test_approval_resumes_the_run_on_another_worker_and_the_call_runs_once(bank: World) -> None:
    run_id, _ = paid_run(bank)

    assert decide(bank, run_id, CallDecision("call_1", "approve", message="ok, go")) is True
    assert bank.run(run_id).status == "queued"
    model = ScriptedModel([text_reply("paid")])
    bank.executor(model, owner="another-worker").execute(run_id)

    run = bank.run(run_id)
    assert (run.status, run.output, run.required_action) == ("succeeded", "paid", None)
    assert SENT == ["acct-0:5"]
    tool_message = model.requests[0].messages[-1]
    assert tool_message["content"].startswith("sent 5 to acct-0")
    assert "the reviewer's note: ok, go" in tool_message["content"]
    kinds = [e.type for e in bank.events(run_id)]
    assert kinds.count("run.started") == 2
    assert (
        kinds.index("run.requires_action")
        < kinds.index("tool.approval")
        < kinds.index("tool.result")
    )


def test_a_denied_call_never_runs_and_the_model_reads_why(bank: World) -> None:
    run_id, _ = paid_run(bank)

    decide(bank, run_id, CallDecision("call_1", "deny", message="not this month"))
    model = ScriptedModel([text_reply("I did not send it.")])
    bank.executor(model).execute(run_id)

    assert bank.run(run_id).status == "succeeded"
    assert SENT == []
    (call,) = bank.steps(run_id)[0].tool_calls
    assert (call.approval, call.is_error) == ("denied", True)
    assert call.result == f"{approvals.DENIED}: not this month"
    assert model.requests[0].messages[-1]["content"] == call.result


def test_an_edited_call_runs_with_the_new_arguments_and_the_model_is_told(bank: World) -> None:
    run_id, _ = paid_run(bank)

    edited = json.dumps({"account": "acct-0", "amount": 1})
    decide(bank, run_id, CallDecision("call_1", "edit", arguments=edited))
    model = ScriptedModel([text_reply("sent 1")])
    bank.executor(model).execute(run_id)

    assert SENT == ["acct-0:1"]
    content = model.requests[0].messages[-1]["content"]
    assert "a human reviewer changed the arguments to" in content
    assert '"amount": 1' in content
    step = bank.steps(run_id)[0]
    assert json.loads(step.output.tool_calls[0].arguments)["amount"] == 5  # the model's own


def test_the_run_waits_until_every_pending_call_is_decided(bank: World) -> None:
    run_id, _ = paid_run(bank, calls=2)
    assert [c.call_id for c in bank.run(run_id).required_action.calls] == ["call_1", "call_2"]  # type: ignore[union-attr]

    assert decide(bank, run_id, CallDecision("call_2", "deny")) is False
    waiting = bank.run(run_id)
    assert waiting.status == "requires_action"
    assert [c.call_id for c in waiting.required_action.calls] == ["call_1"]  # type: ignore[union-attr]
    assert decide(bank, run_id, CallDecision("call_1", "approve")) is True
    bank.executor(ScriptedModel([text_reply("half done")])).execute(run_id)
    assert SENT == ["acct-0:5"]


def test_decisions_that_do_not_fit_the_state_are_refused(
    bank: World, new_world: WorldFactory
) -> None:
    run_id, _ = paid_run(bank)
    with pytest.raises(NotFound):
        decide(bank, run_id, CallDecision("call_9", "approve"))
    stranger = new_world()
    with pytest.raises(NotFound), transaction(bank.engine) as session:
        approvals.decide(session, stranger.tenant_id, run_id, [CallDecision("call_1", "approve")])
    assert decide(bank, run_id, CallDecision("call_1", "approve")) is True
    with pytest.raises(Conflict, match="not waiting for approval"):
        decide(bank, run_id, CallDecision("call_1", "approve"))
    assert bank.run(run_id).status == "queued"


def test_a_call_decided_already_is_a_conflict(bank: World) -> None:
    run_id, _ = paid_run(bank, calls=2)
    decide(bank, run_id, CallDecision("call_1", "approve"))
    with pytest.raises(Conflict, match="approved already"):
        decide(bank, run_id, CallDecision("call_1", "deny"))
    assert bank.run(run_id).status == "requires_action"  # nothing of the refused request kept


def test_a_wait_that_expires_denies_the_pending_calls_and_queues_the_run(bank: World) -> None:
    run_id, _ = paid_run(bank)
    with transaction(bank.engine) as session:
        session.execute(
            update(RunRow)
            .where(RunRow.id == run_id)
            .values(action_expires_at=RunRow.action_expires_at - text("interval '1 hour'"))
        )

    class Queue:
        def __init__(self) -> None:
            self.sent: list[uuid.UUID] = []

        def enqueue_run(self, run_id: uuid.UUID) -> None:
            self.sent.append(run_id)

        def enqueue_facts(self, run_id: uuid.UUID) -> None:
            pass

    queue = Queue()
    sweep_once(bank.engine, queue, interval_s=5)
    assert run_id in queue.sent
    assert bank.run(run_id).status == "queued"
    model = ScriptedModel([text_reply("nobody answered")])
    bank.executor(model).execute(run_id)
    assert SENT == []
    assert model.requests[0].messages[-1]["content"] == approvals.EXPIRED
    (approval,) = [e for e in bank.events(run_id) if e.type == "tool.approval"]
    assert approval.data["expired"] is True


def test_cancelling_a_waiting_run_ends_it_at_once(bank: World) -> None:
    run_id, _ = paid_run(bank)
    with transaction(bank.engine) as session:
        run = run_store.request_cancel(session, bank.tenant_id, run_id)
    assert run.status == "cancelled"
    assert SENT == []


def test_a_waiting_run_holds_its_sessions_next_run_back(bank: World) -> None:
    paid_run(bank)
    later = bank.message("and bob", queue=True)
    with transaction(bank.engine) as session:
        assert run_store.claim(session, later.id, "w", 30) is None
    bank.executor(ScriptedModel([text_reply("x")])).execute(later.id)
    assert bank.run(later.id).status == "queued"


def test_every_tool_needs_approval_under_star(world: World) -> None:
    world.update_agent(approval=ApprovalPolicy(tools=("*",)))
    run = world.message("what is 6*7?")
    world.executor(
        ScriptedModel([tool_calls_reply(("calculator", {"expression": "6*7"}))])
    ).execute(run.id)
    assert world.run(run.id).status == "requires_action"


def test_an_approved_call_cut_short_by_a_dead_worker_is_not_asked_again(bank: World) -> None:
    run_id, _ = paid_run(bank)
    decide(bank, run_id, CallDecision("call_1", "approve"))
    with transaction(bank.engine) as session:  # a worker started the call, then died
        session.execute(
            update(ToolCallRow)
            .where(ToolCallRow.run_id == run_id)
            .values(started_at=func.now(), starts=1)
        )
    model = ScriptedModel([text_reply("unsure")])
    bank.executor(model).execute(run_id)

    assert bank.run(run_id).status == "succeeded"
    assert SENT == []  # not repeated: transfer is not idempotent
    assert "outcome unknown" in model.requests[0].messages[-1]["content"]


def test_ask_user_waits_for_the_answer_and_the_model_reads_it(world: World) -> None:
    run = world.message("book me a table")
    question = {"question": "For how many people?"}
    world.executor(ScriptedModel([tool_calls_reply(("ask_user", question))])).execute(run.id)

    waiting = world.run(run.id)
    assert waiting.status == "requires_action"  # with no approval policy at all
    assert waiting.required_action is not None
    (call,) = waiting.required_action.calls
    assert (call.name, call.kind) == ("ask_user", "question")
    with pytest.raises(Conflict, match="takes answer or deny"):
        decide(world, run.id, CallDecision("call_1", "approve"))
    assert decide(world, run.id, CallDecision("call_1", "answer", message="Four of us."))
    model = ScriptedModel([text_reply("Booked for four.")])
    world.executor(model).execute(run.id)

    assert world.run(run.id).output == "Booked for four."
    (done,) = world.steps(run.id)[0].tool_calls
    assert (done.result, done.is_error) == ("Four of us.", False)
    assert model.requests[0].messages[-1]["content"] == "Four of us."


def test_a_question_left_unanswered_tells_the_model_so(world: World) -> None:
    run = world.message("book me a table")
    asked = tool_calls_reply(("ask_user", {"question": "When?"}))
    world.executor(ScriptedModel([asked])).execute(run.id)
    decide(world, run.id, CallDecision("call_1", "deny"))
    model = ScriptedModel([text_reply("No date, no table.")])
    world.executor(model).execute(run.id)
    assert model.requests[0].messages[-1]["content"] == approvals.UNANSWERED


def test_an_answer_is_only_for_questions(bank: World) -> None:
    run_id, _ = paid_run(bank)
    with pytest.raises(Conflict, match="takes approve, deny or edit"):
        decide(bank, run_id, CallDecision("call_1", "answer", message="yes"))
    assert bank.run(run_id).status == "requires_action"


def test_a_later_step_reusing_a_call_id_is_decided_on_its_own(bank: World) -> None:
    run_id, _ = paid_run(bank)
    decide(bank, run_id, CallDecision("call_1", "approve"))
    again = tool_calls_reply(("transfer", {"account": "acct-9", "amount": 9}))  # id call_1 again
    bank.executor(ScriptedModel([again])).execute(run_id)
    assert bank.run(run_id).required_action.step == 2  # type: ignore[union-attr]

    assert decide(bank, run_id, CallDecision("call_1", "deny")) is True
    bank.executor(ScriptedModel([text_reply("one sent")])).execute(run_id)
    assert SENT == ["acct-0:5"]
    assert [s.tool_calls[0].approval for s in bank.steps(run_id)[:2]] == ["approved", "denied"]
