-- Kestra's `triggers`: one row per Schedule trigger, with the tick it fired last and the
-- one it fires next (`next_ms`, epoch milliseconds, written beside the document). The
-- scheduler fires a tick only under the row's lock, and moves the row on in the same
-- transaction as the execution it creates.
CREATE TABLE triggers (
    [key] NVARCHAR(250) COLLATE Latin1_General_100_BIN2 NOT NULL PRIMARY KEY,
    [value] NVARCHAR(MAX) NOT NULL,
    next_ms BIGINT NOT NULL
);
