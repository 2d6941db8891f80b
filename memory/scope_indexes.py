"""Dedicated vector indexes for the largest search scopes.

A search filters on tenant and agent, usually on a user too. Through the table-wide HNSW graphs
a scope holding a share s of the table costs about 1/s of an unfiltered scan: the graph yields
neighbours of every scope and iterative scans keep going until enough are the scope's (a user
with a quarter of 100,000 memories: ~3,100 index tuples per scan to keep 30). A scope small
enough is read exactly through the B-tree instead, and that cost grows with its rows. For the
scopes in between and above, a partial HNSW index per vector column whose predicate is the scope
(`tenant_id = .. AND agent_id = .. [AND user_id = ..]`) is a graph of that scope alone: no
filtering, no iterations, a smaller graph. The planner uses it by itself, because a search's
conditions imply the predicate (searches are planned for their own values, memory.candidates);
nothing on the query path changes.

`ScopeIndexer.run_once` keeps the set of such indexes in line with the data: it reads the
largest scopes from the extended statistics of migration 0008 (ANALYZE, autovacuum's included,
keeps them; no scan of the table), checks each candidate's size with a bounded count, builds
missing indexes with CREATE INDEX CONCURRENTLY (writes go on meanwhile) and drops those whose
scope fell under half the threshold, and any left invalid by an interrupted build. The catalog
is the registry: each index carries its scope as a JSON comment. A worker runs it periodically
(agents.worker.main); an advisory lock keeps two workers from building at once.

The slots are shared fairly between tenants: a tenant holds at most `max_per_tenant` of them,
and they are handed out round by round (every tenant's largest scope, then every tenant's
second largest, ...), so one tenant's many large scopes never take the slot of another
tenant's largest one, and its searches stay as they were.

The cost is on writes: a memory of an indexed scope is inserted into its scope's graphs as well
as the table's (docs/memory.md, "Scope indexes")."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from psycopg import sql
from sqlalchemy import Connection, Engine, text

log = logging.getLogger(__name__)

PREFIX = "ix_memories_scope_vec_"
"""Names of dedicated indexes start with this; nothing else may use it."""
COLUMNS = {"e": "embedding", "c": "context_embedding"}
"""Suffix of an index name -> the vector column it indexes."""
_LOCK_ID = 0x6D656D5F73636F70  # "mem_scop": one indexer at a time across workers
_HNSW = "WITH (m = 16, ef_construction = 64)"  # as the table-wide indexes (migration 0005)
DEFAULT_MAX_PER_TENANT = 10
"""Slots one tenant may hold (the default of AGENTMILL_MEMORY_SCOPE_INDEX_MAX_PER_TENANT)."""


@dataclass(frozen=True, order=True)
class Scope:
    """The memories of one agent of one tenant, or of one user of that agent."""

    tenant_id: uuid.UUID
    """Tenant."""
    agent_id: uuid.UUID
    """Agent."""
    user_id: str | None = None
    """User; None for every memory of the agent (a search without a user filter)."""

    @property
    def stem(self) -> str:
        """The index names' common part: PREFIX and a digest of the scope."""
        key = f"{self.tenant_id}:{self.agent_id}:{'' if self.user_id is None else self.user_id}"
        kind = "a" if self.user_id is None else "u"
        return f"{PREFIX}{kind}{hashlib.sha256(key.encode()).hexdigest()[:24]}_"

    def index_names(self) -> dict[str, str]:
        """Vector column -> the name of its dedicated index."""
        return {column: self.stem + suffix for suffix, column in COLUMNS.items()}

    def predicate(self) -> sql.Composed:
        """The WHERE clause of its indexes: the conditions memory.queries writes for the filter."""
        parts = [
            sql.SQL("tenant_id = {}").format(sql.Literal(self.tenant_id)),
            sql.SQL("agent_id = {}").format(sql.Literal(self.agent_id)),
        ]
        if self.user_id is not None:
            parts.append(sql.SQL("user_id = {}").format(sql.Literal(self.user_id)))
        return sql.SQL(" AND ").join(parts)

    def comment(self) -> str:
        """The JSON comment that records the scope on its indexes."""
        return json.dumps(
            {
                "tenant_id": str(self.tenant_id),
                "agent_id": str(self.agent_id),
                "user_id": self.user_id,
            }
        )

    @staticmethod
    def from_comment(comment: str | None) -> Scope | None:
        """The scope a comment records, or None when it records none."""
        try:
            data = json.loads(comment or "")
            return Scope(uuid.UUID(data["tenant_id"]), uuid.UUID(data["agent_id"]), data["user_id"])
        except (ValueError, KeyError, TypeError):
            return None


@dataclass(frozen=True)
class ScopeIndex:
    """A dedicated index found in the catalog."""

    name: str
    """Index name."""
    scope: Scope | None
    """Its scope (None: no readable comment, an orphan of an interrupted build)."""
    valid: bool
    """False when a concurrent build failed half-way."""


@dataclass
class Changes:
    """What one pass did."""

    created: list[str] = field(default_factory=list)
    """Indexes built."""
    dropped: list[str] = field(default_factory=list)
    """Indexes dropped."""
    skipped: bool = False
    """True when another indexer held the lock and this pass did nothing."""


# pg_stats_ext, not pg_statistic_ext_data: the view is readable by the table's owner, the
# catalog by superusers only (an external database's role is rarely one).
_LARGEST = text(
    "SELECT s.most_common_vals, s.most_common_freqs, "
    "(SELECT greatest(reltuples, 0) FROM pg_class WHERE oid = CAST('memories' AS regclass)) "
    "FROM pg_stats_ext AS s WHERE s.schemaname = current_schema() AND s.tablename = 'memories' "
    "AND NOT s.inherited AND s.most_common_vals IS NOT NULL "
    "AND s.statistics_name IN ('memories_scope_agents', 'memories_scope_users')"
)
_EXISTING = text(
    "SELECT c.relname, obj_description(c.oid, 'pg_class'), i.indisvalid "
    "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
    "WHERE i.indrelid = CAST('memories' AS regclass) AND starts_with(c.relname, :prefix)"
)


def largest_scopes(conn: Connection, min_rows: int) -> list[tuple[Scope, float]]:
    """Scopes the statistics place at `min_rows` memories or more, with that estimate, largest
    first; empty before the table was first analysed."""
    out = []
    for values, freqs, table_rows in conn.execute(_LARGEST):
        for value, freq in zip(values, freqs, strict=True):
            rows = float(freq) * float(table_rows)
            if rows < min_rows:
                continue
            if len(value) == 3 and value[2] is None:
                continue  # an agent's memories without a user: no search filters on just those
            user = value[2] if len(value) == 3 else None
            out.append((Scope(uuid.UUID(value[0]), uuid.UUID(value[1]), user), rows))
    out.sort(key=lambda item: -item[1])
    return out


def fair_order(scopes: list[tuple[Scope, float]], per_tenant: int) -> list[Scope]:
    """The order slots are offered in: round by round, each tenant's next largest scope (the
    larger first within a round), at most `per_tenant` of each tenant."""
    ranked: list[tuple[int, float, Scope]] = []
    taken: dict[uuid.UUID, int] = {}
    for scope, rows in sorted(scopes, key=lambda item: -item[1]):
        rank = taken.get(scope.tenant_id, 0)
        if rank < per_tenant:
            taken[scope.tenant_id] = rank + 1
            ranked.append((rank, -rows, scope))
    ranked.sort(key=lambda item: (item[0], item[1]))
    return [scope for _, _, scope in ranked]


def existing_indexes(conn: Connection) -> list[ScopeIndex]:
    """Every dedicated index in the catalog."""
    return [
        ScopeIndex(name=name, scope=Scope.from_comment(comment), valid=bool(valid))
        for name, comment, valid in conn.execute(_EXISTING, {"prefix": PREFIX})
    ]


_COUNT_AGENT = text(
    "SELECT count(*) FROM (SELECT 1 FROM memories "
    "WHERE tenant_id = :tenant AND agent_id = :agent LIMIT :n) AS s"
)
_COUNT_USER = text(
    "SELECT count(*) FROM (SELECT 1 FROM memories "
    "WHERE tenant_id = :tenant AND agent_id = :agent AND user_id = :user LIMIT :n) AS s"
)


def count_rows(conn: Connection, scope: Scope, at_most: int) -> int:
    """The scope's memories, counted up to `at_most` (an index-only scan of that many B-tree
    entries at most)."""
    params = {"tenant": scope.tenant_id, "agent": scope.agent_id, "n": at_most}
    if scope.user_id is None:
        return int(conn.execute(_COUNT_AGENT, params).scalar_one())
    return int(conn.execute(_COUNT_USER, {**params, "user": scope.user_id}).scalar_one())


class ScopeIndexer:
    """Builds and drops dedicated indexes; see the module docstring."""

    def __init__(
        self,
        engine: Engine,
        *,
        min_rows: int,
        max_scopes: int,
        max_per_tenant: int = DEFAULT_MAX_PER_TENANT,
    ) -> None:
        self._engine = engine
        self.min_rows = min_rows
        """Scopes with at least this many memories get their own indexes (0: none do)."""
        self.max_scopes = max_scopes
        """At most this many scopes have them (shared fairly between tenants: `fair_order`)."""
        self.max_per_tenant = max_per_tenant
        """At most this many of them belong to one tenant."""

    def run_once(self) -> Changes:
        """One pass: drop what is no longer wanted, then build what is missing."""
        changes = Changes()
        with self._autocommit() as conn:
            if not conn.execute(
                text("SELECT pg_try_advisory_lock(:id)"), {"id": _LOCK_ID}
            ).scalar():
                changes.skipped = True
                return changes
            try:
                self._pass(conn, changes)
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": _LOCK_ID})
        return changes

    def _pass(self, conn: Connection, changes: Changes) -> None:
        wanted: list[Scope] = []
        per_tenant: dict[uuid.UUID, int] = {}
        if self.min_rows > 0:
            for scope in fair_order(largest_scopes(conn, self.min_rows), self.max_per_tenant):
                if len(wanted) == self.max_scopes:
                    break
                # The statistics are a sample and may be older than the last deletes.
                if count_rows(conn, scope, self.min_rows) >= self.min_rows:
                    wanted.append(scope)
                    per_tenant[scope.tenant_id] = per_tenant.get(scope.tenant_id, 0) + 1
        # Existing indexes stay while their scope is wanted, or is still at least half the
        # threshold (so a scope hovering at it is not rebuilt every pass) and both caps allow.
        kept = set(wanted)
        present: set[str] = set()
        floor = max(self.min_rows // 2, 1)
        for index in sorted(existing_indexes(conn), key=lambda i: i.name):
            held = index.scope
            keep = (
                index.valid
                and held is not None
                and (
                    held in kept
                    or (
                        self.min_rows > 0
                        and len(kept) < self.max_scopes
                        and per_tenant.get(held.tenant_id, 0) < self.max_per_tenant
                        and count_rows(conn, held, floor) >= floor
                    )
                )
            )
            if keep and held is not None:
                if held not in kept:
                    per_tenant[held.tenant_id] = per_tenant.get(held.tenant_id, 0) + 1
                kept.add(held)
                present.add(index.name)
            else:
                self._drop(conn, index.name)
                changes.dropped.append(index.name)
        for scope in wanted:
            for column, name in scope.index_names().items():
                if name not in present:
                    self._create(conn, scope, column, name)
                    changes.created.append(name)

    @staticmethod
    def _create(conn: Connection, scope: Scope, column: str, name: str) -> None:
        raw = conn.connection.driver_connection
        assert raw is not None
        log.info("building %s for %s (%s)", name, scope, column)
        raw.execute(
            sql.SQL(
                "CREATE INDEX CONCURRENTLY {name} ON memories "
                "USING hnsw ({column} halfvec_cosine_ops) " + _HNSW + " WHERE {predicate}"
            ).format(
                name=sql.Identifier(name),
                column=sql.Identifier(column),
                predicate=scope.predicate(),
            )
        )
        raw.execute(
            sql.SQL("COMMENT ON INDEX {name} IS {comment}").format(
                name=sql.Identifier(name), comment=sql.Literal(scope.comment())
            )
        )

    @staticmethod
    def _drop(conn: Connection, name: str) -> None:
        raw = conn.connection.driver_connection
        assert raw is not None
        log.info("dropping %s", name)
        raw.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(name)))

    @contextmanager
    def _autocommit(self) -> Iterator[Connection]:
        # CREATE/DROP INDEX CONCURRENTLY refuse to run inside a transaction.
        with self._engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            yield conn
