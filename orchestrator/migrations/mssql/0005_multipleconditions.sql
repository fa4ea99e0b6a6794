-- Kestra's `multipleconditions`: one row per Flow trigger's multiple condition (its
-- `preconditions`, or a legacy `MultipleCondition`) and time window, with the named
-- conditions met so far in the window (`end_ms`, the window's end in epoch milliseconds,
-- written beside the document, for purging expired windows). The executor locks the row
-- while it adds the results of an ending execution, in the transaction that ends it.
CREATE TABLE multipleconditions (
    [key] NVARCHAR(250) COLLATE Latin1_General_100_BIN2 NOT NULL PRIMARY KEY,
    [value] NVARCHAR(MAX) NOT NULL,
    end_ms BIGINT NOT NULL
);
CREATE INDEX multipleconditions_end ON multipleconditions (end_ms);
