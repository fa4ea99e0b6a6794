-- execution_queued as Kestra has it (jdbc-postgres / jdbc-mysql V1_7__execution_queued.sql):
-- the queued execution whole in `value` (Kestra's `ExecutionQueued`: tenantId, namespace,
-- flowId, execution, date), and a NULLable tenant_id: Kestra OSS has no tenant and pops
-- `tenant_id IS NULL`. 0001 stored '' for "no tenant" and no document; a new file rather than
-- an edit of 0001, so that databases already migrated keep theirs. The table is rebuilt (the
-- old column's default constraint has a generated name) and queued rows are carried over,
-- their document built from the execution they name. The columns are written beside `value`
-- rather than computed from it; the pop reads the same columns either way.
CREATE TABLE execution_queued_v2 (
    [key] NVARCHAR(250) COLLATE Latin1_General_100_BIN2 NOT NULL PRIMARY KEY,
    [value] NVARCHAR(MAX) NOT NULL CONSTRAINT ck_execution_queued_value CHECK (ISJSON([value]) = 1),
    tenant_id NVARCHAR(150) COLLATE Latin1_General_100_BIN2 NULL,
    namespace NVARCHAR(150) COLLATE Latin1_General_100_BIN2 NOT NULL,
    flow_id NVARCHAR(150) COLLATE Latin1_General_100_BIN2 NOT NULL,
    [date] DATETIME2(7) NOT NULL
);
GO
INSERT INTO execution_queued_v2 ([key], [value], tenant_id, namespace, flow_id, [date])
SELECT q.[key],
       JSON_MODIFY(JSON_MODIFY(JSON_MODIFY(JSON_MODIFY(N'{}',
           '$.namespace', q.namespace),
           '$.flowId', q.flow_id),
           '$.execution', JSON_QUERY(e.[value])),
           '$.date', CONVERT(NVARCHAR(30), q.[date], 127) + N'Z'),
       NULL, q.namespace, q.flow_id, q.[date]
FROM execution_queued q JOIN executions e ON e.[key] = q.[key];
GO
DROP TABLE execution_queued;
GO
EXEC sp_rename N'execution_queued_v2', N'execution_queued';
