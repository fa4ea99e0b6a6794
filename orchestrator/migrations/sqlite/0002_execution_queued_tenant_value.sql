-- execution_queued as Kestra has it (jdbc-h2 V1_6__execution_queued.sql): the queued execution
-- whole in `value` (Kestra's `ExecutionQueued`: tenantId, namespace, flowId, execution, date),
-- and a NULLable tenant_id: Kestra OSS has no tenant and pops `tenant_id IS NULL`. 0001 stored
-- '' for "no tenant" and no document; a new file rather than an edit of 0001, so that databases
-- already migrated keep their checksums. Queued rows are carried over, their document built
-- from the execution they name. The columns are written beside `value` rather than generated
-- from it; the pop reads the same columns either way.
CREATE TABLE execution_queued_v2 (
    "key" TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    tenant_id TEXT,
    namespace TEXT NOT NULL,
    flow_id TEXT NOT NULL,
    -- fixed-width `YYYY-MM-DDTHH:MM:SS.ffffffZ`, so that text order is time order
    date TEXT NOT NULL
);

INSERT INTO execution_queued_v2 ("key", value, tenant_id, namespace, flow_id, date)
SELECT q."key",
       json_object('namespace', q.namespace, 'flowId', q.flow_id,
                   'execution', json(e.value),
                   'date', strftime('%Y-%m-%dT%H:%M:%f000Z', q.date)),
       NULL, q.namespace, q.flow_id, strftime('%Y-%m-%dT%H:%M:%f000Z', q.date)
FROM execution_queued q JOIN executions e ON e."key" = q."key";

DROP TABLE execution_queued;
ALTER TABLE execution_queued_v2 RENAME TO execution_queued;
