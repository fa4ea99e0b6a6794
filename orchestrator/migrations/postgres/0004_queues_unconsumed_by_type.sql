-- 0003's partial index keeps the unconsumed rows in offset order, whatever their type. A
-- poll for some types then walks past every unconsumed row of the others: with 28,838
-- worker tasks waiting, each executor poll read them all (8,200 index tuples a scan, and
-- tuples fetched per execution grew from 280 to 2,100 over 40,000 executions). Keyed by
-- type first, a poll reads only the rows of the types it asks for.
CREATE INDEX IF NOT EXISTS ix_queues_unconsumed_type ON queues (type, "offset") WHERE NOT consumed;
DROP INDEX IF EXISTS ix_queues_unconsumed;
