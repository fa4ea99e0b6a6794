//! Reading the plan of the `execution_queued` pop: which index it walks and whether it sorts.
//!
//! Kestra's `queued.index` change only pays off when the database walks the
//! (tenant, namespace, flow, date) index in date order and stops at the first row. Whether
//! it can depends on the tenant predicate: `tenant_id = ?` (multi-tenant) is an equality a
//! planner can use to skip the leading column, `tenant_id IS NULL` (Kestra OSS) is not one
//! for every planner. So each dialect's `EXPLAIN` text is read here, conservatively: a fact
//! the text does not show plainly is `None`, never a guess.

use crate::knobs::QueuedIndex;

/// The pop's select and the database's plan for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PopPlan {
    /// The statement explained, with its placeholders (values were bound, not inlined).
    pub statement: String,
    /// The database's `EXPLAIN` output, one line per plan row.
    pub plan: String,
}

/// What a plan says about the pop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PlanFacts {
    /// Whether the plan reads through the `queued.index` setting's index.
    pub uses_index: Option<bool>,
    /// Whether the plan sorts the flow's rows (rather than reading them in date order
    /// from the index and stopping at the first).
    pub sorts: Option<bool>,
}

/// The index each `queued.index` setting builds.
pub fn index_name(index: QueuedIndex) -> &'static str {
    super::dialect::queued_pop(index).index
}

/// Reads a plan of `backend` (`sqlite`, `postgres`, `mysql`, `mssql`) for its use of
/// `index` and for a sort step.
pub fn read(backend: &str, plan: &str, index: &str) -> PlanFacts {
    let names = |marker: &str| mentions(plan, marker, index);
    match backend {
        // `Index Scan using ix on t`, `Index Only Scan using ix`, `Bitmap Index Scan on ix`;
        // a `Sort` or `Incremental Sort` node sorts.
        "postgres" => PlanFacts {
            uses_index: Some(names("using ") || names("Index Scan on ")),
            sorts: Some(plan.lines().any(|l| {
                let node = l.trim_start().trim_start_matches("->").trim_start();
                node.starts_with("Sort ") || node.starts_with("Incremental Sort ")
            })),
        },
        // Rows rendered as `key=ix_… | Extra=Using where; Using filesort`.
        "mysql" => PlanFacts {
            uses_index: Some(names("key=")),
            sorts: Some(plan.contains("Using filesort")),
        },
        // `SEARCH execution_queued USING INDEX ix (…)` or `USING COVERING INDEX ix`;
        // `USE TEMP B-TREE FOR ORDER BY` sorts.
        "sqlite" => PlanFacts {
            uses_index: Some(names("INDEX ")),
            sorts: Some(plan.contains("USE TEMP B-TREE FOR ORDER BY")),
        },
        // SHOWPLAN_TEXT: `Index Seek(OBJECT:([db].[dbo].[execution_queued].[ix]) …`;
        // `Sort(` or `Top N Sort(` sorts.
        "mssql" => PlanFacts {
            uses_index: Some(names("[")),
            sorts: Some(plan.contains("Sort(")),
        },
        _ => PlanFacts::default(),
    }
}

/// Whether `marker` followed by exactly the identifier `index` (not a longer one that
/// starts with it: `ix_execution_queued_flow` is a prefix of `…_flow_date`) occurs in `plan`.
fn mentions(plan: &str, marker: &str, index: &str) -> bool {
    let needle = format!("{marker}{index}");
    plan.match_indices(&needle).any(|(at, _)| {
        plan[at + needle.len()..]
            .chars()
            .next()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLOW: &str = "ix_execution_queued_flow";
    const FLOW_DATE: &str = "ix_execution_queued_flow_date";

    #[test]
    fn postgres_plans_name_the_index_and_the_sort() {
        let walk = "Limit  (cost=0.29..0.45 rows=1 width=40)\n  ->  LockRows  (cost=0.29..8.31 rows=50 width=40)\n        ->  Index Scan using ix_execution_queued_flow_date on execution_queued  (cost=0.29..7.81 rows=50 width=40)\n              Index Cond: ((tenant_id = 'main'::text) AND (namespace = 'n'::text))";
        assert_eq!(
            read("postgres", walk, FLOW_DATE),
            PlanFacts {
                uses_index: Some(true),
                sorts: Some(false)
            }
        );
        // The old index's name is a prefix of the new one's: it is not "used" here.
        assert_eq!(read("postgres", walk, FLOW).uses_index, Some(false));
        let sort = "Limit\n  ->  LockRows\n        ->  Sort  (cost=8.3..8.4 rows=50 width=40)\n              Sort Key: date\n              ->  Bitmap Heap Scan on execution_queued\n                    ->  Bitmap Index Scan on ix_execution_queued_flow_date";
        assert_eq!(
            read("postgres", sort, FLOW_DATE),
            PlanFacts {
                uses_index: Some(true),
                sorts: Some(true)
            }
        );
        assert_eq!(
            read("postgres", "Seq Scan on execution_queued", FLOW).uses_index,
            Some(false)
        );
    }

    #[test]
    fn mysql_sqlite_and_mssql_plans_are_read_too() {
        let maria = "id=1 | select_type=SIMPLE | table=execution_queued | type=ref | possible_keys=ix_execution_queued_flow | key=ix_execution_queued_flow | rows=100 | Extra=Using index condition; Using where; Using filesort";
        assert_eq!(
            read("mysql", maria, FLOW),
            PlanFacts {
                uses_index: Some(true),
                sorts: Some(true)
            }
        );
        let sqlite = "SEARCH execution_queued USING INDEX ix_execution_queued_flow_date (tenant_id=? AND namespace=? AND flow_id=?)";
        assert_eq!(
            read("sqlite", sqlite, FLOW_DATE),
            PlanFacts {
                uses_index: Some(true),
                sorts: Some(false)
            }
        );
        let mssql = "  |--Top(TOP EXPRESSION:((1)))\n       |--Sort(ORDER BY:([date] ASC))\n            |--Index Seek(OBJECT:([t].[dbo].[execution_queued].[ix_execution_queued_flow]))";
        assert_eq!(
            read("mssql", mssql, FLOW),
            PlanFacts {
                uses_index: Some(true),
                sorts: Some(true)
            }
        );
        assert_eq!(read("oracle", "anything", FLOW), PlanFacts::default());
    }
}
