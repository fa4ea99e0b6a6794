-- Kestra's `executordelayed`: paused task runs to move on at a date (a Pause's `delay` or
-- `timeout`). The date is written beside the document, in epoch milliseconds; the executor
-- takes the due rows `FOR UPDATE SKIP LOCKED`, so two executors never take one.
CREATE TABLE IF NOT EXISTS executordelayed (
    "key" VARCHAR(250) PRIMARY KEY,
    value TEXT NOT NULL,
    date_ms BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_executordelayed_date ON executordelayed (date_ms);
