-- Kestra's `multipleconditions`: one row per Flow trigger's multiple condition (its
-- `preconditions`, or a legacy `MultipleCondition`) and time window, with the named
-- conditions met so far in the window (`end_ms`, the window's end in epoch milliseconds,
-- written beside the document, for purging expired windows). The executor locks the row
-- while it adds the results of an ending execution, in the transaction that ends it.
CREATE TABLE IF NOT EXISTS multipleconditions (
    `key` VARCHAR(250) NOT NULL PRIMARY KEY,
    `value` LONGTEXT NOT NULL,
    end_ms BIGINT NOT NULL,
    INDEX multipleconditions_end (end_ms)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
