-- The kill queue (`execution_killed`). The executor polls it like the other types: its
-- partial index of unconsumed rows, as 0005 gives each type one. Workers read its rows
-- consumed or not, after an offset (`read_queue`): a second partial index, of them all.
CREATE INDEX IF NOT EXISTS ix_queues_unconsumed_execution_killed ON queues ("offset")
    WHERE NOT consumed AND type = 'execution_killed';
CREATE INDEX IF NOT EXISTS ix_queues_execution_killed ON queues ("offset")
    WHERE type = 'execution_killed';
