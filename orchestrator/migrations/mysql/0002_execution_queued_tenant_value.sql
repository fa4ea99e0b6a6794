-- execution_queued as Kestra has it (jdbc-mysql V1_7__execution_queued.sql): the queued
-- execution whole in `value` (Kestra's `ExecutionQueued`: tenantId, namespace, flowId,
-- execution, date), and a NULLable tenant_id: Kestra OSS has no tenant and pops
-- `tenant_id IS NULL`. 0001 stored '' for "no tenant" and no document; a new file rather than
-- an edit of 0001, so that databases already migrated keep their checksums. Queued rows are
-- kept, their document built from the execution they name. The columns are written beside
-- `value` rather than generated from it; the pop reads the same columns either way.
ALTER TABLE execution_queued ADD COLUMN `value` JSON NULL AFTER `key`;

UPDATE execution_queued q JOIN executions e ON e.`key` = q.`key`
SET q.`value` = JSON_OBJECT(
    'namespace', q.namespace,
    'flowId', q.flow_id,
    'execution', JSON_EXTRACT(e.`value`, '$'),
    'date', DATE_FORMAT(q.date, '%Y-%m-%dT%H:%i:%s.%fZ'));

-- A queued row whose execution is gone can never run.
DELETE FROM execution_queued WHERE `value` IS NULL;

ALTER TABLE execution_queued
    MODIFY `value` JSON NOT NULL,
    MODIFY tenant_id VARCHAR(150) NULL DEFAULT NULL;

UPDATE execution_queued SET tenant_id = NULL WHERE tenant_id = '';
