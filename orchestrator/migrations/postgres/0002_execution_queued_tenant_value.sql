-- execution_queued as Kestra has it (jdbc-postgres V1_7__execution_queued.sql): the queued
-- execution whole in `value` (Kestra's `ExecutionQueued`: tenantId, namespace, flowId,
-- execution, date), and a NULLable tenant_id: Kestra OSS has no tenant and pops
-- `tenant_id IS NULL`. 0001 stored '' for "no tenant" and no document; a new file rather than
-- an edit of 0001, so that databases already migrated keep their checksums. Queued rows are
-- kept, their document built from the execution they name. The columns are written beside
-- `value` rather than generated from it; the pop reads the same columns either way.
ALTER TABLE execution_queued ADD COLUMN value JSONB;

UPDATE execution_queued q
SET value = jsonb_build_object(
    'namespace', q.namespace,
    'flowId', q.flow_id,
    'execution', e.value,
    'date', to_char(q.date AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
FROM executions e
WHERE e."key" = q."key";

-- A queued row whose execution is gone can never run.
DELETE FROM execution_queued WHERE value IS NULL;

ALTER TABLE execution_queued
    ALTER COLUMN value SET NOT NULL,
    ALTER COLUMN tenant_id DROP NOT NULL,
    ALTER COLUMN tenant_id DROP DEFAULT;

UPDATE execution_queued SET tenant_id = NULL WHERE tenant_id = '';
