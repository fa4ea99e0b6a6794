-- The executions table's columns are written by the store beside `value`, instead of being
-- generated from it. As VIRTUAL generated columns under five indexes, every save re-parsed
-- the whole document some dozen times (each json_extract, for the old row's index entries
-- and for the new one's), which made a save cost O(document) many times over: 11 ms for an
-- execution of 1,000 task runs. The columns, their names and what they hold are unchanged;
-- `state_duration` is still milliseconds from `state.startDate` to `state.endDate`, as
-- Kestra's benchmark reads it. A new file rather than an edit of 0001, so that databases
-- already migrated keep their checksums; existing rows are carried over.
CREATE TABLE executions_v2 (
    "key" TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    namespace TEXT,
    flow_id TEXT,
    state_current TEXT,
    start_date TEXT,
    end_date TEXT,
    state_duration REAL
);

INSERT INTO executions_v2 ("key", value, namespace, flow_id, state_current, start_date,
                           end_date, state_duration)
SELECT "key", value, namespace, flow_id, state_current, start_date, end_date, state_duration
FROM executions;

DROP TABLE executions;
ALTER TABLE executions_v2 RENAME TO executions;

CREATE INDEX IF NOT EXISTS ix_executions_flow ON executions (namespace, flow_id, state_current);
CREATE INDEX IF NOT EXISTS ix_executions_state ON executions (state_current);
CREATE INDEX IF NOT EXISTS ix_executions_start_date ON executions (start_date);
CREATE INDEX IF NOT EXISTS ix_executions_end_date ON executions (end_date);
CREATE INDEX IF NOT EXISTS ix_executions_state_duration ON executions (state_duration);
