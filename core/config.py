"""The one settings object. Every environment variable agentmill reads is declared here."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.errors import ConfigError

_POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")
_BROKER_SCHEMES = (
    "redis",
    "rediss",
    "amqp",
    "amqps",
    "sqla+postgresql+psycopg",
    "agentmill-sqla+postgresql+psycopg",
)


class ModelRoute(BaseModel):
    """One router alias: a litellm model string and how to reach it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(description="litellm model string, e.g. openai/gpt-4o-mini.")
    api_base: str | None = None
    api_key: SecretStr | None = None
    fallbacks: tuple[str, ...] = Field(default=(), description="Aliases tried when this fails.")
    timeout_s: float = Field(default=120.0, gt=0)
    max_retries: int = Field(default=2, ge=0, le=10)
    context_window: int | None = Field(
        default=None, ge=256, description="Tokens the model accepts; unset = litellm's figure."
    )


class McpStdioCommand(BaseModel):
    """A stdio MCP server a deployer allows: the command workers start for it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: str = Field(min_length=1, description="The executable, e.g. `npx` or a path.")
    args: tuple[str, ...] = ()
    env: dict[str, str] = Field(
        default_factory=dict,
        description="Environment of the process (besides PATH, HOME and the like).",
    )
    cwd: str | None = None


def _default_home() -> Path:
    return Path.home() / ".local" / "share" / "agentmill"


class Settings(BaseSettings):
    """agentmill's configuration, read from `AGENTMILL_*` environment variables."""

    model_config = SettingsConfigDict(
        env_prefix="AGENTMILL_", extra="ignore", frozen=True, populate_by_name=True
    )

    environment: Literal["development", "production"] = Field(
        default="development",
        description="`production` refuses embedded, development-only defaults.",
    )
    home: Path = Field(
        default_factory=_default_home,
        description="Data directory: the embedded Postgres lives in `home/pg`.",
    )
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("AGENTMILL_DATABASE_URL", "DATABASE_URL"),
        description="Any Postgres with pgvector; unset means the embedded server in `home/pg`.",
    )
    broker_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("AGENTMILL_BROKER_URL", "REDIS_URL"),
        description="Celery broker; unset means the database (kombu's SQLAlchemy transport).",
    )
    api_host: str = Field(default="127.0.0.1", description="Address the REST API binds to.")
    api_port: int = Field(default=8000, ge=1, le=65535, description="Port of the REST API.")
    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Largest request body the API accepts (413 above)."
    )
    rate_limit_per_minute: int = Field(
        default=1200,
        ge=0,
        description="Requests per minute each tenant may make to the API, per API process "
        "(429 above); 0 disables the limit.",
    )
    rate_limit_burst: int | None = Field(
        default=None,
        ge=1,
        description="Requests a tenant may make back to back before the per-minute rate "
        "applies; unset = rate_limit_per_minute.",
    )
    rate_limit_redis_url: str | None = Field(
        default=None,
        description="Redis where every API process keeps the per-tenant buckets, so the rate "
        "holds across processes; unset = the broker when it is Redis, else each process keeps "
        "its own.",
    )
    api_max_streams_per_tenant: int = Field(
        default=16,
        ge=1,
        le=10_000,
        description="Event streams and wait=true requests one tenant may hold open on one API "
        "process (429 above).",
    )
    api_max_streams: int = Field(
        default=256,
        ge=1,
        le=100_000,
        description="Event streams and wait=true requests one API process holds open in all "
        "(429 above).",
    )
    api_refusal_hold_s: float = Field(
        default=10.0,
        ge=0.0,
        le=60.0,
        description="Longest an API process holds a 429 before sending it (each hold is drawn "
        "between half and all of this, never past its Retry-After, which is shortened by the "
        "time held), so a client that retries at once, ignoring Retry-After, cannot spin; 0 "
        "answers at once.",
    )
    api_max_held_refusals: int = Field(
        default=1000,
        ge=0,
        le=100_000,
        description="429s one API process holds at once; past that they are answered at once.",
    )
    auth_failures_per_minute: int = Field(
        default=30,
        ge=0,
        description="Failed authentications (a well-formed key that is unknown, wrong or "
        "revoked) one client address may make per minute before its unknown keys get 429 "
        "without a database lookup; 0 disables the limit.",
    )
    auth_cache_ttl_s: float = Field(
        default=10.0,
        ge=0.0,
        le=300.0,
        description="How long an API process trusts a key it looked up; a revocation reaches "
        "every process at once through a notification, and nothing is cached while that "
        "listener is down; 0 looks every key up on every request.",
    )
    db_connect_timeout_s: int = Field(
        default=3, ge=1, le=60, description="Seconds to wait for a database connection."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="`json`: one JSON object per line (timestamp, level, logger, message, and "
        "tenant, run, request and trace ids where known); `text` for humans.",
    )
    metrics_dir: Path | None = Field(
        default=None,
        description="Where every agentmill process of this host keeps its Prometheus metrics "
        "(multiprocess mode), so the API's /metrics shows the workers' too; default "
        "`<home>/metrics`.",
    )
    worker_metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65_535,
        description="A worker also serves its host's metrics at http://0.0.0.0:PORT/metrics "
        "(unset: only the API serves them).",
    )
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None,
        description="OTLP/HTTP endpoint (e.g. http://127.0.0.1:4318) that traces are sent to; "
        "unset (and no OTEL_EXPORTER_OTLP_ENDPOINT): tracing is off.",
    )
    otel_service_name: str = Field(
        default="agentmill", min_length=1, description="`service.name` of the traces."
    )
    litellm_callbacks: tuple[str, ...] = Field(
        default=(),
        description="litellm callbacks to switch on for routed models (JSON list, e.g. "
        '["langfuse"]; each reads its own environment variables).',
    )
    memory_max_content_chars: int = Field(
        default=8000,
        ge=1,
        le=1_000_000,
        description="Longest memory content (characters); longer content is refused (413).",
    )
    memory_dedupe_similarity: float = Field(
        default=0.95,
        gt=0,
        le=1.0,
        description="Cosine similarity at or above which a new memory updates an existing one.",
    )
    memory_block_char_limit: int = Field(
        default=5000, ge=1, le=100_000, description="Default character limit of a core block."
    )
    memory_ef_search: int = Field(
        default=40, ge=10, le=1000, description="HNSW ef_search used by memory searches."
    )
    embedding_model: Path | None = Field(
        default=None,
        description="Directory of the sentence-transformers model that embeds memories (and "
        "serves /v1/embeddings); unset = the bundled all-MiniLM-L6-v2. Changing it needs "
        "`agentmill memory reembed` (docs/memory.md).",
    )
    embedding_int8_queries: bool = Field(
        default=True,
        description="Embed search queries with an int8 copy of the model's linear layers on "
        "the CPU (about 2x faster; memories keep the full model; docs/memory.md). Off = "
        "queries use the model as it is.",
    )
    memory_scope_index_min_rows: int = Field(
        default=5000,
        ge=0,
        description="A search scope (an agent, or a user of an agent) holding at least this "
        "many memories gets its own vector indexes (memory/scope_indexes.py); 0 turns them off "
        "and drops those built.",
    )
    memory_scope_index_max: int = Field(
        default=100, ge=0, le=10_000, description="Most scopes with their own vector indexes."
    )
    memory_scope_index_max_per_tenant: int = Field(
        default=10,
        ge=0,
        le=10_000,
        description="Most of those scopes one tenant may hold; the slots are handed out to "
        "tenants in turn (each one's largest scope first), so one tenant cannot take another's.",
    )
    memory_scope_index_interval_s: float = Field(
        default=300.0,
        gt=0,
        le=86_400.0,
        description="How often a worker checks which scopes need their own vector indexes.",
    )

    inference_host: str = Field(
        default="127.0.0.1", description="Where the inference server binds."
    )
    inference_port: int = Field(default=8001, ge=1, le=65535, description="Its port.")
    inference_engine: Literal["llama", "transformers"] = Field(
        default="llama", description="llama: GGUF on llama.cpp (CPU); transformers: HF model (GPU)."
    )
    inference_model: Path | None = Field(
        default=None,
        description="GGUF file (llama) or HF model directory (transformers); unset = bundled "
        "SmolLM2-135M-Instruct.",
    )
    inference_dummy_weights: bool = Field(
        default=False,
        description="transformers: random weights of the model's config (benchmarks).",
    )
    inference_slots: int = Field(
        default=4, ge=1, le=256, description="Requests decoded together (llama.cpp sequences)."
    )
    inference_context: int = Field(
        default=4096, ge=256, description="Context window per request, in tokens."
    )
    inference_threads: int | None = Field(
        default=None, ge=1, description="CPU threads for llama.cpp; unset = all cores but one."
    )
    inference_prefix_reuse: bool = Field(
        default=True, description="Reuse the KV cache of a shared prompt prefix (llama.cpp)."
    )
    inference_max_waiting: int = Field(
        default=64, ge=1, description="Requests allowed to wait for a slot; more get 429."
    )
    inference_url: str | None = Field(
        default=None,
        description="Base URL (…/v1) of the server behind the `local` model alias; unset = "
        "this installation's own inference server.",
    )
    models: dict[str, ModelRoute] = Field(
        default_factory=dict,
        description="Extra model aliases for the router, as JSON: "
        '{"alias": {"model": "openai/gpt-4o-mini", "api_key": "..."}}.',
    )

    worker_concurrency: int = Field(
        default=8, ge=1, le=256, description="Runs one worker executes at once (threads)."
    )
    worker_fair_share: bool = Field(
        default=True,
        description="Share the workers' slots fairly between tenants: each queue message "
        "starts the claimable run of the tenant with the fewest running (then least recently "
        "started) runs, so one tenant's backlog delays another's run by one slot's turn at "
        "most; false = strict queue order.",
    )
    run_tool_concurrency: int = Field(
        default=4,
        ge=1,
        le=32,
        description="Most tool calls of one model reply a run executes at once (the rest "
        "follow as those end); 1 runs a reply's calls one after another.",
    )
    run_lease_s: float = Field(
        default=30.0,
        ge=1.0,
        le=3600.0,
        description="A worker's hold on a run, renewed while it works; once lapsed (the worker "
        "died), the sweeper hands the run to another worker.",
    )
    sweep_interval_s: float = Field(
        default=10.0, gt=0, le=3600.0, description="How often each worker looks for lost runs."
    )
    supervisor_max_restarts: int = Field(
        default=5,
        ge=1,
        le=1000,
        description="Deaths of one child of `agentmill up` within the window that make a crash "
        "loop: `up` then stops with a message instead of restarting it again.",
    )
    supervisor_window_s: float = Field(
        default=120.0, gt=0, le=86_400.0, description="The crash-loop window, in seconds."
    )
    worker_heartbeat_s: float = Field(
        default=5.0,
        gt=0,
        le=600.0,
        description="How often each worker records that it is alive; /readyz counts a worker "
        "as alive for three intervals after its last beat.",
    )
    run_max_attempts: int = Field(
        default=5,
        ge=1,
        le=100,
        description="Claims of one run that ended without a trace (a crashed worker) before it "
        "is failed as poison; an attempt that handed the run back after an outage does not count.",
    )
    model_retry_s: float = Field(
        default=60.0,
        ge=0.0,
        le=3600.0,
        description="How long a run waits out a model server that cannot be reached, times out, "
        "answers 5xx or rate limits (retrying with backoff) before it hands the run back to the "
        "queue for a later attempt; the run never fails for it.",
    )
    db_retry_s: float = Field(
        default=60.0,
        ge=0.0,
        le=3600.0,
        description="How long a run retries a database operation whose connection dropped "
        "(restart, failover) before it stops and leaves the run to its lease.",
    )
    agent_max_output_tokens: int = Field(
        default=512, ge=16, le=65536, description="Most tokens one model call of a run generates."
    )
    tool_modules: tuple[str, ...] = Field(
        default=(),
        description="Python modules whose @tool functions workers load, as a JSON list "
        "(besides the `agentmill.tools` entry points).",
    )
    mcp_stdio_servers: dict[str, McpStdioCommand] = Field(
        default_factory=dict,
        description="The stdio MCP servers tenants may register, by name, as a JSON object "
        '(`{"files": {"command": "npx", "args": ["-y", "some-mcp-server"]}}`); a tenant names '
        "one, it never sends a command.",
    )
    mcp_allowed_hosts: tuple[str, ...] = Field(
        default=(),
        description="Hosts or networks (`10.0.0.0/8`, `127.0.0.1`, `mcp.internal`) that MCP "
        "servers over HTTP may be on although they are private, loopback or link-local; "
        "public addresses need no listing. JSON list.",
    )
    mcp_call_timeout_s: float = Field(
        default=60.0, gt=0, le=3600.0, description="Default limit for one MCP tool call."
    )
    mcp_connect_timeout_s: float = Field(
        default=15.0,
        gt=0,
        le=600.0,
        description="Limit for connecting to an MCP server and listing its tools.",
    )
    mcp_tools_ttl_s: float = Field(
        default=300.0,
        ge=0,
        le=86_400.0,
        description="How long a worker reuses an MCP server's tool listing before listing "
        "again (a failed call also lists again).",
    )
    mcp_idle_close_s: float = Field(
        default=300.0,
        gt=0,
        le=86_400.0,
        description="A worker closes its connection to an MCP server (and stops a stdio "
        "server's process) after this long unused.",
    )
    webhook_allowed_hosts: tuple[str, ...] = Field(
        default=(),
        description="Hosts or networks webhook endpoints may be on although they are private, "
        "loopback or link-local (JSON list); public addresses need no listing.",
    )
    webhook_timeout_s: float = Field(
        default=10.0, gt=0, le=120.0, description="Limit for one webhook delivery attempt."
    )
    webhook_max_age_s: float = Field(
        default=86_400.0,
        gt=0,
        le=30 * 86_400.0,
        description="How long a delivery is retried (with exponential backoff) before it is "
        "marked failed.",
    )
    webhook_concurrency: int = Field(
        default=8, ge=1, le=256, description="Deliveries one worker process sends at once."
    )
    webhook_poll_s: float = Field(
        default=1.0, gt=0, le=60.0, description="How often a worker looks for due deliveries."
    )
    schedule_poll_s: float = Field(
        default=1.0, gt=0, le=60.0, description="How often a worker looks for due schedules."
    )
    schedule_grace_s: float = Field(
        default=300.0,
        ge=0,
        le=86_400.0,
        description="A schedule's fire time at most this late still gets its own run; later "
        "than that it was missed, and the schedule's `missed` policy (run_once, skip) applies.",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Key that encrypts stored secrets (MCP servers' headers, webhook signing "
        "secrets); every API and "
        "worker process needs the same one. Unset: a random key kept in `home/secret-key` "
        "(one machine only; refused in production).",
    )

    retention_interval_s: float = Field(
        default=60.0,
        gt=0,
        le=86_400.0,
        description="How often each worker runs the cleaner (agents/worker/cleaner.py); one worker "
        "at a time does the work.",
    )
    retention_batch_rows: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description="Rows the cleaner deletes or compacts per statement (each in its own "
        "short transaction).",
    )
    retention_broker_consumed_s: float = Field(
        default=300.0,
        ge=0.0,
        le=30 * 86_400.0,
        description="Consumed messages of the database broker (kombu_message rows marked "
        "invisible) are deleted this long after they were taken; pending ones never are.",
    )
    retention_delta_events_s: float = Field(
        default=60.0,
        ge=0.0,
        le=30 * 86_400.0,
        description="The token deltas (message.delta events) of a run that ended are deleted "
        "this long after it ended; its lifecycle events and its answer (the message event) "
        "are kept.",
    )
    retention_step_context_days: float | None = Field(
        default=7.0,
        ge=0.0,
        description="The recorded context (the whole prompt) of each step of an ended run is "
        "emptied this many days after the step; empty or `forever` keeps contexts forever.",
    )
    retention_webhook_deliveries_days: float | None = Field(
        default=7.0,
        ge=0.0,
        description="Webhook deliveries that were delivered or given up (with their attempts) "
        "are deleted this many days after they were made; empty or `forever` keeps them.",
    )
    retention_block_versions: int | None = Field(
        default=50,
        ge=1,
        description="Versions of each core memory block kept in its history (the newest); "
        "empty or `forever` keeps every version.",
    )
    disk_min_free_mb: int = Field(
        default=512,
        ge=0,
        description="Free space (MiB) the database's data directory must keep: below it "
        "/readyz answers 503 and new runs and batches are refused (507); 0 turns the check "
        "off.",
    )
    disk_max_database_mb: int | None = Field(
        default=None,
        ge=1,
        description="For a database whose data directory this machine cannot see (a remote "
        "server): the most MiB the database may use (pg_database_size) before the same "
        "refusals; unset = no limit.",
    )

    @field_validator(
        "retention_step_context_days",
        "retention_block_versions",
        "retention_webhook_deliveries_days",
        mode="before",
    )
    @classmethod
    def _forever(cls, value: object) -> object:
        # An environment variable cannot be unset to None: an empty value or `forever` is.
        if isinstance(value, str) and value.strip().lower() in ("", "none", "forever"):
            return None
        return value

    @field_validator("home", mode="after")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("embedding_model", mode="before")
    @classmethod
    def _model_directory(cls, value: object) -> object:
        # Checked here, before any process loads it: a bad path fails at start-up, by name.
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str | Path):
            return value
        path = Path(value).expanduser().resolve()
        if not path.is_dir():
            raise ValueError(f"{path} is not a directory (a sentence-transformers model)")
        if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
            raise ValueError(
                f"{path} holds no modules.json or config.json: not a sentence-transformers "
                "or transformers model directory"
            )
        return path

    @field_validator("database_url", mode="after")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        scheme = value.split("://", 1)[0]
        if "://" not in value or scheme not in _POSTGRES_SCHEMES:
            raise ValueError(
                "must be a PostgreSQL URL such as postgresql://user:pass@host:5432/db "
                f"(got scheme {scheme!r})"
            )
        return value

    @field_validator("broker_url", mode="after")
    @classmethod
    def _broker_scheme(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        scheme = value.split("://", 1)[0]
        if "://" not in value or scheme not in _BROKER_SCHEMES:
            raise ValueError(f"must use one of {', '.join(_BROKER_SCHEMES)} (got {scheme!r})")
        return value

    @field_validator("rate_limit_redis_url", mode="after")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if value.split("://", 1)[0] not in ("redis", "rediss") or "://" not in value:
            raise ValueError("must be a redis:// or rediss:// URL")
        return value

    @model_validator(mode="after")
    def _production_needs_services(self) -> Settings:
        if self.environment == "production" and self.database_url is None:
            raise ValueError(
                "AGENTMILL_ENVIRONMENT=production needs AGENTMILL_DATABASE_URL: the embedded "
                "Postgres is a development default"
            )
        return self

    @cached_property
    def local_inference_url(self) -> str:
        """Base URL of the server behind the `local` alias."""
        if self.inference_url:
            return self.inference_url.rstrip("/")
        host = "127.0.0.1" if self.inference_host in ("0.0.0.0", "::") else self.inference_host  # noqa: S104
        return f"http://{host}:{self.inference_port}/v1"

    @cached_property
    def pg_dir(self) -> Path:
        """Data directory of the embedded Postgres."""
        return self.home / "pg"

    @property
    def shared_rate_limit_url(self) -> str | None:
        """The Redis that API processes share rate-limit buckets in, or None (per process)."""
        if self.rate_limit_redis_url:
            return self.rate_limit_redis_url
        if self.broker_url and self.broker_url.split("://", 1)[0] in ("redis", "rediss"):
            return self.broker_url
        return None

    @cached_property
    def secret_key_file(self) -> Path:
        """Where the generated secret key lives when AGENTMILL_SECRET_KEY is unset (0600)."""
        return self.home / "secret-key"

    @cached_property
    def api_key_file(self) -> Path:
        """Where `agentmill up` writes the first key of a new installation (mode 0600)."""
        return self.home / "api-key"


def load_settings() -> Settings:
    """Read and validate the settings; raise `ConfigError` with one line per bad variable."""
    try:
        return Settings()
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"]) or "settings"
            env = f"AGENTMILL_{name.upper()}" if error["loc"] else "settings"
            lines.append(f"{env}: {error['msg']}")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None
