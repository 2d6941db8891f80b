"""Core memory blocks: limits, versions, per-user blocks, agent edits."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import Engine

from core.errors import NotFound, UserError
from memory.blocks import render_blocks
from memory.errors import BlockTooLarge
from memory.store import MemoryStore
from tests.memory.conftest import make_tenant


def test_versions_accumulate_and_same_value_is_a_no_op(
    memory: MemoryStore, tenant: uuid.UUID, agent: uuid.UUID
) -> None:
    first = memory.set_block(tenant, agent, "persona", "I am Sam, a travel assistant.")
    assert (first.version, first.char_limit, first.user_id) == (1, 5000, None)
    assert memory.set_block(tenant, agent, "persona", "I am Sam, a travel assistant.").version == 1
    second = memory.set_block(tenant, agent, "persona", "I am Sam.", char_limit=100, author="x")
    assert (second.version, second.char_limit) == (2, 100)
    appended = memory.append_to_block(tenant, agent, "persona", "I speak French.")
    assert appended.value == "I am Sam.\nI speak French."
    replaced = memory.replace_in_block(tenant, agent, "persona", "French", "Dutch")
    assert replaced.value == "I am Sam.\nI speak Dutch."
    history = memory.block_history(tenant, agent, "persona")
    assert [(v.version, v.author) for v in history] == [
        (1, "api"),
        (2, "x"),
        (3, "agent"),
        (4, "agent"),
    ]
    assert history[0].value == "I am Sam, a travel assistant."
    assert history[-1].value == replaced.value
    assert memory.get_block(tenant, agent, "persona") == replaced


def test_size_limits_are_enforced_on_every_write(
    memory: MemoryStore, tenant: uuid.UUID, agent: uuid.UUID
) -> None:
    memory.set_block(tenant, agent, "human", "Name: Uma", char_limit=20)
    with pytest.raises(BlockTooLarge, match="limit is 20") as info:
        memory.set_block(tenant, agent, "human", "Name: Uma, likes long walks")
    assert (info.value.size, info.value.limit) == (27, 20)
    with pytest.raises(BlockTooLarge):
        memory.append_to_block(tenant, agent, "human", "Likes tea and cake")
    with pytest.raises(BlockTooLarge):
        memory.replace_in_block(tenant, agent, "human", "Uma", "Uma Thurman-Smithers")
    with pytest.raises(UserError, match="char_limit"):
        memory.set_block(tenant, agent, "notes", "x", char_limit=0)
    assert memory.get_block(tenant, agent, "human").version == 1


def test_bad_labels_and_missing_blocks(
    memory: MemoryStore, tenant: uuid.UUID, agent: uuid.UUID
) -> None:
    for label in ("", "Persona", "1st", "a b", "x" * 65):
        with pytest.raises(UserError, match="label"):
            memory.set_block(tenant, agent, label, "v")
    with pytest.raises(NotFound):
        memory.get_block(tenant, agent, "persona")
    with pytest.raises(NotFound):
        memory.append_to_block(tenant, agent, "persona", "v")
    with pytest.raises(NotFound):
        memory.block_history(tenant, agent, "persona")
    with pytest.raises(NotFound):
        memory.delete_block(tenant, agent, "persona")
    memory.set_block(tenant, agent, "persona", "abc")
    with pytest.raises(UserError, match="not found in block"):
        memory.replace_in_block(tenant, agent, "persona", "xyz", "q")


def test_user_blocks_sit_beside_the_agent_blocks(
    memory: MemoryStore, tenant: uuid.UUID, agent: uuid.UUID
) -> None:
    memory.set_block(tenant, agent, "persona", "I am Sam.")
    memory.set_block(tenant, agent, "human", "Name: Vera", user_id="vera")
    memory.set_block(tenant, agent, "human", "Name: Walt", user_id="walt")
    assert [b.label for b in memory.list_blocks(tenant, agent)] == ["persona"]
    for_vera = memory.list_blocks(tenant, agent, user_id="vera")
    assert [(b.label, b.value) for b in for_vera] == [
        ("human", "Name: Vera"),
        ("persona", "I am Sam."),
    ]
    rendered = render_blocks(for_vera)
    assert '<human user="vera" chars="10/5000">\nName: Vera\n</human>' in rendered
    assert "<persona" in rendered
    assert "Walt" not in rendered
    memory.delete_block(tenant, agent, "human", user_id="vera")
    assert [b.label for b in memory.list_blocks(tenant, agent, user_id="vera")] == ["persona"]


def test_blocks_are_tenant_scoped(memory: MemoryStore, engine: Engine, agent: uuid.UUID) -> None:
    mine, theirs = make_tenant(engine, "mine"), make_tenant(engine, "theirs")
    memory.set_block(mine, agent, "persona", "secret persona")
    with pytest.raises(NotFound):
        memory.get_block(theirs, agent, "persona")
    with pytest.raises(NotFound):
        memory.block_history(theirs, agent, "persona")
    with pytest.raises(NotFound):
        memory.delete_block(theirs, agent, "persona")
    with pytest.raises(NotFound):
        memory.append_to_block(theirs, agent, "persona", "x")
    assert memory.list_blocks(theirs, agent) == []
    theirs_block = memory.set_block(theirs, agent, "persona", "their own")
    assert theirs_block.version == 1
    assert memory.get_block(mine, agent, "persona").value == "secret persona"


def test_an_edit_applied_again_with_its_key_changes_nothing(
    memory: MemoryStore, tenant: uuid.UUID, agent: uuid.UUID
) -> None:
    memory.set_block(tenant, agent, "human", "Name: Ada")
    once = memory.append_to_block(tenant, agent, "human", "Likes tea", edit_key="run:1:c1")
    twice = memory.append_to_block(tenant, agent, "human", "Likes tea", edit_key="run:1:c1")
    assert once.value == twice.value == "Name: Ada\nLikes tea"
    assert twice.version == once.version == 2
    # Another call with the same text is another edit: it applies.
    other = memory.append_to_block(tenant, agent, "human", "Likes tea", edit_key="run:2:c1")
    assert other.value == "Name: Ada\nLikes tea\nLikes tea"

    replaced = memory.replace_in_block(tenant, agent, "human", "Ada", "Ada L.", edit_key="r:1:c2")
    # Run again without its key it would apply twice ("Ada L. L."); with it, nothing changes.
    again = memory.replace_in_block(tenant, agent, "human", "Ada", "Ada L.", edit_key="r:1:c2")
    assert again == replaced
    assert replaced.value.startswith("Name: Ada L.\n")
    # A key seen on an earlier version still dedupes after later edits.
    assert memory.append_to_block(tenant, agent, "human", "x", edit_key="run:1:c1") == again
    versions = memory.block_history(tenant, agent, "human")
    assert [v.version for v in versions] == [1, 2, 3, 4]
    # Without a key, every append applies (the REST API and other callers).
    memory.append_to_block(tenant, agent, "human", "y")
    memory.append_to_block(tenant, agent, "human", "y")
    assert memory.get_block(tenant, agent, "human").value.endswith("\ny\ny")
