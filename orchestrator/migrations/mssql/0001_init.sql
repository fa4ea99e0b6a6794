-- flowbench schema for SQL Server 2016+ (JSON_VALUE needs compatibility level 130), mirroring
-- Kestra's JDBC tables: JSON documents live in an NVARCHAR(MAX) `value` checked by ISJSON; the
-- columns that queries filter on are PERSISTED computed columns over JSON_VALUE, each indexed
-- (SQL Server's documented way to index JSON).
--
-- Applied by `repository::mssql::migrate` in one transaction, recorded in
-- flowbench_migrations. A line holding only `GO` would split batches, as in sqlcmd.
--
-- Key and id columns use the Latin1_General_100_BIN2 collation: ids compare code point by code
-- point, as on the other backends (the server default, *_CI_AS, would make `flowId = 'A'` match
-- `a`). NVARCHAR keeps every Unicode character (UTF-16), NUL included.
--
-- Dates are ISO-8601 with zero to nine fractional digits and a `Z`. DATETIME2 takes at most
-- seven digits, and a PERSISTED column must be deterministic, which CONVERT from text is only
-- with an explicit style: so the `Z` is removed, the text cut to `YYYY-MM-DDTHH:MM:SS.fffffff`
-- (27 characters) and converted with style 126 (ISO-8601).

CREATE TABLE queues (
    [offset] BIGINT IDENTITY(1, 1) NOT NULL PRIMARY KEY,
    [type] NVARCHAR(32) COLLATE Latin1_General_100_BIN2 NOT NULL,
    [key] NVARCHAR(250) COLLATE Latin1_General_100_BIN2 NOT NULL,
    [value] NVARCHAR(MAX) NOT NULL,
    consumed BIT NOT NULL DEFAULT 0,
    updated DATETIME2(6) NOT NULL DEFAULT SYSUTCDATETIME()
);
CREATE INDEX ix_queues_poll ON queues ([type], consumed, [offset]);

CREATE TABLE executions (
    [key] NVARCHAR(250) COLLATE Latin1_General_100_BIN2 NOT NULL PRIMARY KEY,
    [value] NVARCHAR(MAX) NOT NULL CONSTRAINT ck_executions_value CHECK (ISJSON([value]) = 1),
    namespace AS CAST(JSON_VALUE([value], '$.namespace') AS NVARCHAR(150)) COLLATE Latin1_General_100_BIN2 PERSISTED,
    flow_id AS CAST(JSON_VALUE([value], '$.flowId') AS NVARCHAR(150)) COLLATE Latin1_General_100_BIN2 PERSISTED,
    state_current AS CAST(JSON_VALUE([value], '$.state.current') AS NVARCHAR(32)) COLLATE Latin1_General_100_BIN2 PERSISTED,
    start_date AS CONVERT(DATETIME2(7), LEFT(REPLACE(JSON_VALUE([value], '$.state.startDate'), 'Z', ''), 27), 126) PERSISTED,
    end_date AS CONVERT(DATETIME2(7), LEFT(REPLACE(JSON_VALUE([value], '$.state.endDate'), 'Z', ''), 27), 126) PERSISTED,
    -- milliseconds, as Kestra's benchmark reads `avg(state_duration)`; a computed column cannot
    -- name another, so both dates are spelled out again
    state_duration AS CAST(DATEDIFF_BIG(MICROSECOND,
        CONVERT(DATETIME2(7), LEFT(REPLACE(JSON_VALUE([value], '$.state.startDate'), 'Z', ''), 27), 126),
        CONVERT(DATETIME2(7), LEFT(REPLACE(JSON_VALUE([value], '$.state.endDate'), 'Z', ''), 27), 126)
    ) / 1000.0 AS FLOAT) PERSISTED
);
CREATE INDEX ix_executions_flow ON executions (namespace, flow_id, state_current);
CREATE INDEX ix_executions_state ON executions (state_current);
CREATE INDEX ix_executions_start_date ON executions (start_date);
CREATE INDEX ix_executions_end_date ON executions (end_date);
CREATE INDEX ix_executions_state_duration ON executions (state_duration);

CREATE TABLE logs (
    [key] NVARCHAR(250) COLLATE Latin1_General_100_BIN2 NOT NULL PRIMARY KEY,
    [value] NVARCHAR(MAX) NOT NULL CONSTRAINT ck_logs_value CHECK (ISJSON([value]) = 1),
    namespace AS CAST(JSON_VALUE([value], '$.namespace') AS NVARCHAR(150)) COLLATE Latin1_General_100_BIN2 PERSISTED,
    flow_id AS CAST(JSON_VALUE([value], '$.flowId') AS NVARCHAR(150)) COLLATE Latin1_General_100_BIN2 PERSISTED,
    execution_id AS CAST(JSON_VALUE([value], '$.executionId') AS NVARCHAR(150)) COLLATE Latin1_General_100_BIN2 PERSISTED,
    task_run_id AS CAST(JSON_VALUE([value], '$.taskRunId') AS NVARCHAR(150)) COLLATE Latin1_General_100_BIN2 PERSISTED,
    [level] AS CAST(JSON_VALUE([value], '$.level') AS NVARCHAR(5)) PERSISTED,
    [timestamp] AS CONVERT(DATETIME2(7), LEFT(REPLACE(JSON_VALUE([value], '$.timestamp'), 'Z', ''), 27), 126) PERSISTED
);
CREATE INDEX ix_logs_execution_id ON logs (execution_id);
CREATE INDEX ix_logs_timestamp ON logs ([timestamp]);

-- Executions waiting for a slot under their flow's concurrency limit. The pop index is
-- created at start-up from the `queued.index` knob.
CREATE TABLE execution_queued (
    [key] NVARCHAR(250) COLLATE Latin1_General_100_BIN2 NOT NULL PRIMARY KEY,
    tenant_id NVARCHAR(150) COLLATE Latin1_General_100_BIN2 NOT NULL DEFAULT N'',
    namespace NVARCHAR(150) COLLATE Latin1_General_100_BIN2 NOT NULL,
    flow_id NVARCHAR(150) COLLATE Latin1_General_100_BIN2 NOT NULL,
    [date] DATETIME2(7) NOT NULL
);

-- 450 characters: a clustered key holds at most 900 bytes.
CREATE TABLE flows (
    [key] NVARCHAR(450) COLLATE Latin1_General_100_BIN2 NOT NULL PRIMARY KEY,
    namespace NVARCHAR(150) COLLATE Latin1_General_100_BIN2 NOT NULL,
    id NVARCHAR(150) COLLATE Latin1_General_100_BIN2 NOT NULL,
    revision INT NOT NULL,
    source NVARCHAR(MAX) NOT NULL
);
CREATE INDEX ix_flows_namespace ON flows (namespace, id);

-- Liveness: workers heartbeat here; the task runs a worker holds are in worker_job_running
-- until their result is queued, and are resubmitted when the worker stops heartbeating.
CREATE TABLE service_instance (
    id NVARCHAR(250) COLLATE Latin1_General_100_BIN2 NOT NULL PRIMARY KEY,
    kind NVARCHAR(32) COLLATE Latin1_General_100_BIN2 NOT NULL,
    heartbeat_ms BIGINT NOT NULL
);

CREATE TABLE worker_job_running (
    [key] NVARCHAR(250) COLLATE Latin1_General_100_BIN2 NOT NULL PRIMARY KEY,
    worker_id NVARCHAR(250) COLLATE Latin1_General_100_BIN2 NOT NULL,
    [value] NVARCHAR(MAX) NOT NULL
);
CREATE INDEX ix_worker_job_running_worker ON worker_job_running (worker_id);
