-- flowbench schema for SQLite, mirroring Kestra's JDBC tables. JSON documents live in `value`;
-- the columns queries filter on are generated from it and indexed.

CREATE TABLE IF NOT EXISTS queues (
    "offset" INTEGER PRIMARY KEY AUTOINCREMENT,
    type TEXT NOT NULL,
    "key" TEXT NOT NULL,
    value TEXT NOT NULL,
    consumed INTEGER NOT NULL DEFAULT 0,
    updated TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX IF NOT EXISTS ix_queues_poll ON queues (type, consumed, "offset");

CREATE TABLE IF NOT EXISTS executions (
    "key" TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    namespace TEXT GENERATED ALWAYS AS (json_extract(value, '$.namespace')) VIRTUAL,
    flow_id TEXT GENERATED ALWAYS AS (json_extract(value, '$.flowId')) VIRTUAL,
    state_current TEXT GENERATED ALWAYS AS (json_extract(value, '$.state.current')) VIRTUAL,
    start_date TEXT GENERATED ALWAYS AS (json_extract(value, '$.state.startDate')) VIRTUAL,
    end_date TEXT GENERATED ALWAYS AS (json_extract(value, '$.state.endDate')) VIRTUAL,
    -- milliseconds, as Kestra's benchmark reads `avg(state_duration)`
    state_duration REAL GENERATED ALWAYS AS (
        (julianday(json_extract(value, '$.state.endDate'))
         - julianday(json_extract(value, '$.state.startDate'))) * 86400000.0
    ) VIRTUAL
);
CREATE INDEX IF NOT EXISTS ix_executions_flow ON executions (namespace, flow_id, state_current);
CREATE INDEX IF NOT EXISTS ix_executions_state ON executions (state_current);
CREATE INDEX IF NOT EXISTS ix_executions_start_date ON executions (start_date);
CREATE INDEX IF NOT EXISTS ix_executions_end_date ON executions (end_date);
CREATE INDEX IF NOT EXISTS ix_executions_state_duration ON executions (state_duration);

CREATE TABLE IF NOT EXISTS logs (
    "key" TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    namespace TEXT GENERATED ALWAYS AS (json_extract(value, '$.namespace')) VIRTUAL,
    flow_id TEXT GENERATED ALWAYS AS (json_extract(value, '$.flowId')) VIRTUAL,
    execution_id TEXT GENERATED ALWAYS AS (json_extract(value, '$.executionId')) VIRTUAL,
    task_run_id TEXT GENERATED ALWAYS AS (json_extract(value, '$.taskRunId')) VIRTUAL,
    level TEXT GENERATED ALWAYS AS (json_extract(value, '$.level')) VIRTUAL,
    timestamp TEXT GENERATED ALWAYS AS (json_extract(value, '$.timestamp')) VIRTUAL
);
CREATE INDEX IF NOT EXISTS ix_logs_execution_id ON logs (execution_id);
CREATE INDEX IF NOT EXISTS ix_logs_timestamp ON logs (timestamp);

-- Executions waiting for a slot under their flow's concurrency limit. The pop index is
-- created at start-up from the `queued.index` knob.
CREATE TABLE IF NOT EXISTS execution_queued (
    "key" TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL DEFAULT '',
    namespace TEXT NOT NULL,
    flow_id TEXT NOT NULL,
    date TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS flows (
    "key" TEXT PRIMARY KEY,
    namespace TEXT NOT NULL,
    id TEXT NOT NULL,
    revision INTEGER NOT NULL,
    source TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_flows_namespace ON flows (namespace, id);

-- Liveness: workers heartbeat here; the task runs a worker holds are in worker_job_running
-- until their result is queued, and are resubmitted when the worker stops heartbeating.
CREATE TABLE IF NOT EXISTS service_instance (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    heartbeat_ms INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS worker_job_running (
    "key" TEXT PRIMARY KEY,
    worker_id TEXT NOT NULL,
    value TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_worker_job_running_worker ON worker_job_running (worker_id);
