-- Kestra's `executordelayed`: paused task runs to move on at a date (a Pause's `delay` or
-- `timeout`). The date is written beside the document, in epoch milliseconds; the executor
-- takes the due rows `FOR UPDATE SKIP LOCKED`, so two executors never take one.
CREATE TABLE IF NOT EXISTS executordelayed (
    `key` VARCHAR(250) NOT NULL PRIMARY KEY,
    `value` LONGTEXT NOT NULL,
    date_ms BIGINT NOT NULL,
    INDEX ix_executordelayed_date (date_ms)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
