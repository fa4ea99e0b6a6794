-- Kestra's `executordelayed`: paused task runs to move on at a date (a Pause's `delay` or
-- `timeout`). The date is written beside the document, in epoch milliseconds, as the
-- executions table's columns are (0003).
CREATE TABLE IF NOT EXISTS executordelayed (
    "key" TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    date_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_executordelayed_date ON executordelayed (date_ms);
