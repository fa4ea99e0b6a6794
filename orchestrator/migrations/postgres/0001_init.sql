-- flowbench schema for PostgreSQL, mirroring Kestra's JDBC tables (kestra-io/kestra
-- jdbc-postgres V1__initial.sql): JSON documents live in a JSONB `value`; the columns that
-- queries filter on are STORED generated columns, each indexed.

-- Generated columns need IMMUTABLE expressions, and `text::timestamptz` is only STABLE
-- (it reads DateStyle and TimeZone). Every date flowbench writes is ISO-8601 with an explicit
-- `Z`, for which the cast does not depend on those settings, so the wrapper may be declared
-- IMMUTABLE, as Kestra's PARSE_ISO8601_DATETIME is.
CREATE OR REPLACE FUNCTION flowbench_parse_datetime(text) RETURNS timestamptz
    AS $$ SELECT $1::timestamptz $$
    LANGUAGE SQL IMMUTABLE;

CREATE TABLE IF NOT EXISTS queues (
    "offset" BIGSERIAL PRIMARY KEY,
    type VARCHAR(32) NOT NULL,
    "key" VARCHAR(250) NOT NULL,
    value JSONB NOT NULL,
    consumed BOOLEAN NOT NULL DEFAULT FALSE,
    updated TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS ix_queues_poll ON queues (type, consumed, "offset");

CREATE TABLE IF NOT EXISTS executions (
    "key" VARCHAR(250) PRIMARY KEY,
    value JSONB NOT NULL,
    namespace TEXT GENERATED ALWAYS AS (value ->> 'namespace') STORED,
    flow_id TEXT GENERATED ALWAYS AS (value ->> 'flowId') STORED,
    state_current VARCHAR(32) GENERATED ALWAYS AS (value #>> '{state,current}') STORED,
    start_date TIMESTAMPTZ GENERATED ALWAYS AS (flowbench_parse_datetime(value #>> '{state,startDate}')) STORED,
    end_date TIMESTAMPTZ GENERATED ALWAYS AS (flowbench_parse_datetime(value #>> '{state,endDate}')) STORED,
    -- milliseconds, as Kestra's benchmark reads `avg(state_duration)`
    state_duration DOUBLE PRECISION GENERATED ALWAYS AS (
        EXTRACT(EPOCH FROM (flowbench_parse_datetime(value #>> '{state,endDate}')
                            - flowbench_parse_datetime(value #>> '{state,startDate}')))::double precision * 1000.0
    ) STORED
);
CREATE INDEX IF NOT EXISTS ix_executions_flow ON executions (namespace, flow_id, state_current);
CREATE INDEX IF NOT EXISTS ix_executions_state ON executions (state_current);
CREATE INDEX IF NOT EXISTS ix_executions_start_date ON executions (start_date);
CREATE INDEX IF NOT EXISTS ix_executions_end_date ON executions (end_date);
CREATE INDEX IF NOT EXISTS ix_executions_state_duration ON executions (state_duration);

CREATE TABLE IF NOT EXISTS logs (
    "key" VARCHAR(250) PRIMARY KEY,
    value JSONB NOT NULL,
    namespace TEXT GENERATED ALWAYS AS (value ->> 'namespace') STORED,
    flow_id TEXT GENERATED ALWAYS AS (value ->> 'flowId') STORED,
    execution_id VARCHAR(150) GENERATED ALWAYS AS (value ->> 'executionId') STORED,
    task_run_id VARCHAR(150) GENERATED ALWAYS AS (value ->> 'taskRunId') STORED,
    level VARCHAR(5) GENERATED ALWAYS AS (value ->> 'level') STORED,
    "timestamp" TIMESTAMPTZ GENERATED ALWAYS AS (flowbench_parse_datetime(value ->> 'timestamp')) STORED
);
CREATE INDEX IF NOT EXISTS ix_logs_execution_id ON logs (execution_id);
CREATE INDEX IF NOT EXISTS ix_logs_timestamp ON logs ("timestamp");

-- Executions waiting for a slot under their flow's concurrency limit. The pop index is
-- created at start-up from the `queued.index` knob.
CREATE TABLE IF NOT EXISTS execution_queued (
    "key" VARCHAR(250) PRIMARY KEY,
    tenant_id TEXT NOT NULL DEFAULT '',
    namespace TEXT NOT NULL,
    flow_id TEXT NOT NULL,
    date TIMESTAMPTZ NOT NULL
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
    id VARCHAR(250) PRIMARY KEY,
    kind VARCHAR(32) NOT NULL,
    heartbeat_ms BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS worker_job_running (
    "key" VARCHAR(250) PRIMARY KEY,
    worker_id VARCHAR(250) NOT NULL,
    value JSONB NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_worker_job_running_worker ON worker_job_running (worker_id);
