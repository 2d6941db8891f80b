"""Which embedding model the stored vectors came from, and the check that the configured one
is that model.

The database keeps the record itself, so every process and every deployment agrees on it:
the width is the type of the `halfvec` columns (`halfvec(384)`: pgvector's type modifier is
the dimension), the model a JSON comment on the column `memories.embedding`
(`{"model": "all-MiniLM-L6-v2@4b6fe92cb5d7"}`, migration 0019; `agentmill memory reembed`
rewrites both). A comment rather than a table: it travels with the column through dumps and
restores, and it holds no tenant's data. Models are compared by fingerprint, the part after
the `@` (inference.embedder.model_identity), so a renamed copy of the same directory is the
same model."""

from __future__ import annotations

import json
from dataclasses import dataclass

from psycopg import sql
from sqlalchemy import Connection, Engine, text

from memory.embedder import Embedder, NamedEmbedder
from memory.errors import EmbeddingModelChanged


@dataclass(frozen=True)
class ModelRecord:
    """What the database says about its vectors."""

    model: str | None
    """`name@fingerprint` of the model, or None (written by an embedder that names none)."""
    dimension: int
    """Width of the vector columns."""


_READ = text(
    "SELECT a.atttypmod, col_description(a.attrelid, a.attnum) FROM pg_attribute a "
    "WHERE a.attrelid = CAST('memories' AS regclass) AND a.attname = 'embedding'"
)


def read(conn: Connection) -> ModelRecord:
    """The record of this database (migrated to 0019 or later)."""
    typmod, comment = conn.execute(_READ).one()
    try:
        model = json.loads(comment or "{}").get("model")
    except (ValueError, AttributeError):
        model = None
    return ModelRecord(model=model if isinstance(model, str) else None, dimension=int(typmod))


def write(conn: Connection, model: str | None) -> None:
    """Record `model` as the one the vectors came from (in the caller's transaction; the
    dimension is the column type, which the caller sets)."""
    raw = conn.connection.driver_connection
    assert raw is not None
    comment = sql.Literal(json.dumps({"model": model})).as_string(raw)
    conn.exec_driver_sql(f"COMMENT ON COLUMN memories.embedding IS {comment}")


def model_of(embedder: Embedder) -> str | None:
    """The model an embedder names, or None."""
    return embedder.identity if isinstance(embedder, NamedEmbedder) else None


def same_model(a: str | None, b: str | None) -> bool:
    """Whether two identities name the same model (equal fingerprints)."""
    if a is None or b is None:
        return a == b
    return a.rsplit("@", 1)[-1] == b.rsplit("@", 1)[-1]


def check(engine: Engine, embedder: Embedder) -> ModelRecord:
    """The database's record when the embedder fits it: its dimension always, its model when
    it names one. `EmbeddingModelChanged`, naming both and the command to run, otherwise."""
    with engine.connect() as conn:
        record = read(conn)
    model = model_of(embedder)
    dimension = embedder.dimension
    fits = dimension == record.dimension
    if isinstance(embedder, NamedEmbedder):
        fits = fits and same_model(record.model, model)
    if not fits:
        raise EmbeddingModelChanged(record.model, record.dimension, model, dimension)
    return record
