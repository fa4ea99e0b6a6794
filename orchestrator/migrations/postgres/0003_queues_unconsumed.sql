-- The poll (`WHERE NOT consumed AND type = ANY($1) ORDER BY "offset" LIMIT n`) reads only
-- rows not yet consumed. With (type, consumed, "offset") alone, the planner walked the
-- primary key in offset order through every consumed row the cleaner had not deleted yet,
-- so a poll cost O(messages of the last seconds) and the work per execution grew with the
-- rate itself. A partial index holds the unconsumed rows alone, in offset order: a poll
-- reads the backlog, not the history. The old index is dropped: nothing else reads it, and
-- every consume had to update it.
CREATE INDEX IF NOT EXISTS ix_queues_unconsumed ON queues ("offset") WHERE NOT consumed;
DROP INDEX IF EXISTS ix_queues_poll;
