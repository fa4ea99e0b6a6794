-- flowbench schema for MySQL 8 / MariaDB 10.6+, mirroring Kestra's JDBC tables (kestra-io/kestra
-- jdbc-mysql V1__initial.sql): JSON documents live in `value` (on MariaDB, JSON is LONGTEXT with
-- a JSON_VALID check); the columns that queries filter on are generated from it and indexed.
--
-- Tables use utf8mb4_bin: every Unicode character fits, and ids compare byte for byte, as on
-- SQLite and PostgreSQL (a case-insensitive collation would make `flowId = 'A'` match `a`).
--
-- Dates are ISO-8601 with zero to nine fractional digits and a `Z`. MariaDB refuses CAST(... AS
-- DATETIME) in a generated column but accepts STR_TO_DATE, whose %f wants one to six digits:
-- so the text is padded to at least six fractional digits and cut to
-- `YYYY-MM-DDTHH:MM:SS.ffffff` (26 characters) first.

CREATE TABLE IF NOT EXISTS queues (
    `offset` BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    `type` VARCHAR(32) NOT NULL,
    `key` VARCHAR(250) NOT NULL,
    `value` JSON NOT NULL,
    consumed BOOLEAN NOT NULL DEFAULT FALSE,
    updated TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    INDEX ix_queues_poll (`type`, consumed, `offset`)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS executions (
    `key` VARCHAR(250) NOT NULL PRIMARY KEY,
    `value` JSON NOT NULL,
    namespace VARCHAR(150) GENERATED ALWAYS AS (JSON_UNQUOTE(JSON_EXTRACT(`value`, '$.namespace'))) STORED,
    flow_id VARCHAR(150) GENERATED ALWAYS AS (JSON_UNQUOTE(JSON_EXTRACT(`value`, '$.flowId'))) STORED,
    state_current VARCHAR(32) GENERATED ALWAYS AS (JSON_UNQUOTE(JSON_EXTRACT(`value`, '$.state.current'))) STORED,
    start_date DATETIME(6) GENERATED ALWAYS AS (
        STR_TO_DATE(LEFT(CONCAT(REPLACE(JSON_UNQUOTE(JSON_EXTRACT(`value`, '$.state.startDate')), 'Z', ''), IF(LOCATE('.', JSON_UNQUOTE(JSON_EXTRACT(`value`, '$.state.startDate'))) > 0, '000000', '.000000')), 26), '%Y-%m-%dT%H:%i:%s.%f')
    ) STORED,
    end_date DATETIME(6) GENERATED ALWAYS AS (
        STR_TO_DATE(LEFT(CONCAT(REPLACE(JSON_UNQUOTE(JSON_EXTRACT(`value`, '$.state.endDate')), 'Z', ''), IF(LOCATE('.', JSON_UNQUOTE(JSON_EXTRACT(`value`, '$.state.endDate'))) > 0, '000000', '.000000')), 26), '%Y-%m-%dT%H:%i:%s.%f')
    ) STORED,
    -- milliseconds, as Kestra's benchmark reads `avg(state_duration)`
    state_duration DOUBLE GENERATED ALWAYS AS (
        TIMESTAMPDIFF(MICROSECOND,
            STR_TO_DATE(LEFT(CONCAT(REPLACE(JSON_UNQUOTE(JSON_EXTRACT(`value`, '$.state.startDate')), 'Z', ''), IF(LOCATE('.', JSON_UNQUOTE(JSON_EXTRACT(`value`, '$.state.startDate'))) > 0, '000000', '.000000')), 26), '%Y-%m-%dT%H:%i:%s.%f'),
            STR_TO_DATE(LEFT(CONCAT(REPLACE(JSON_UNQUOTE(JSON_EXTRACT(`value`, '$.state.endDate')), 'Z', ''), IF(LOCATE('.', JSON_UNQUOTE(JSON_EXTRACT(`value`, '$.state.endDate'))) > 0, '000000', '.000000')), 26), '%Y-%m-%dT%H:%i:%s.%f')
        ) / 1000.0
    ) STORED,
    INDEX ix_executions_flow (namespace, flow_id, state_current),
    INDEX ix_executions_state (state_current),
    INDEX ix_executions_start_date (start_date),
    INDEX ix_executions_end_date (end_date),
    INDEX ix_executions_state_duration (state_duration)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS logs (
    `key` VARCHAR(250) NOT NULL PRIMARY KEY,
    `value` JSON NOT NULL,
    namespace VARCHAR(150) GENERATED ALWAYS AS (JSON_UNQUOTE(JSON_EXTRACT(`value`, '$.namespace'))) STORED,
    flow_id VARCHAR(150) GENERATED ALWAYS AS (JSON_UNQUOTE(JSON_EXTRACT(`value`, '$.flowId'))) STORED,
    execution_id VARCHAR(150) GENERATED ALWAYS AS (JSON_UNQUOTE(JSON_EXTRACT(`value`, '$.executionId'))) STORED,
    task_run_id VARCHAR(150) GENERATED ALWAYS AS (JSON_UNQUOTE(JSON_EXTRACT(`value`, '$.taskRunId'))) STORED,
    level VARCHAR(5) GENERATED ALWAYS AS (JSON_UNQUOTE(JSON_EXTRACT(`value`, '$.level'))) STORED,
    `timestamp` DATETIME(6) GENERATED ALWAYS AS (
        STR_TO_DATE(LEFT(CONCAT(REPLACE(JSON_UNQUOTE(JSON_EXTRACT(`value`, '$.timestamp')), 'Z', ''), IF(LOCATE('.', JSON_UNQUOTE(JSON_EXTRACT(`value`, '$.timestamp'))) > 0, '000000', '.000000')), 26), '%Y-%m-%dT%H:%i:%s.%f')
    ) STORED,
    INDEX ix_logs_execution_id (execution_id),
    INDEX ix_logs_timestamp (`timestamp`)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Executions waiting for a slot under their flow's concurrency limit. The pop index is
-- created at start-up from the `queued.index` knob.
CREATE TABLE IF NOT EXISTS execution_queued (
    `key` VARCHAR(250) NOT NULL PRIMARY KEY,
    tenant_id VARCHAR(150) NOT NULL DEFAULT '',
    namespace VARCHAR(150) NOT NULL,
    flow_id VARCHAR(150) NOT NULL,
    date DATETIME(6) NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS flows (
    `key` VARCHAR(500) NOT NULL PRIMARY KEY,
    namespace VARCHAR(150) NOT NULL,
    id VARCHAR(150) NOT NULL,
    revision INT NOT NULL,
    source LONGTEXT NOT NULL,
    INDEX ix_flows_namespace (namespace, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Liveness: workers heartbeat here; the task runs a worker holds are in worker_job_running
-- until their result is queued, and are resubmitted when the worker stops heartbeating.
CREATE TABLE IF NOT EXISTS service_instance (
    id VARCHAR(250) NOT NULL PRIMARY KEY,
    kind VARCHAR(32) NOT NULL,
    heartbeat_ms BIGINT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS worker_job_running (
    `key` VARCHAR(250) NOT NULL PRIMARY KEY,
    worker_id VARCHAR(250) NOT NULL,
    `value` JSON NOT NULL,
    INDEX ix_worker_job_running_worker (worker_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
