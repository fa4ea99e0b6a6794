-- Kestra's `triggers`: one row per Schedule trigger, with the tick it fired last and the
-- one it fires next (`next_ms`, epoch milliseconds, written beside the document). The
-- scheduler fires a tick only under the row's lock, and moves the row on in the same
-- transaction as the execution it creates.
CREATE TABLE IF NOT EXISTS triggers (
    "key" TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    next_ms INTEGER NOT NULL
);
