-- Kestra's `executordelayed`: paused task runs to move on at a date (a Pause's `delay` or
-- `timeout`). The date is written beside the document, in epoch milliseconds; the executor
-- takes the due rows WITH (UPDLOCK, READPAST), so two executors never take one.
CREATE TABLE executordelayed (
    [key] NVARCHAR(250) COLLATE Latin1_General_100_BIN2 NOT NULL PRIMARY KEY,
    [value] NVARCHAR(MAX) NOT NULL,
    date_ms BIGINT NOT NULL,
    INDEX ix_executordelayed_date (date_ms)
);
