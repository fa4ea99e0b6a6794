-- `start_date` and `end_date` are written fixed-width (`2024-01-02T03:04:05.123456Z`, see
-- `sortable_date` in sqlite.rs) so that their text order is time order, for the execution
-- search's date filters and sorts. They were written as the document spells dates, with as
-- many fractional digits as the instant needs, which does not sort (`05.1Z` after
-- `05.12Z`). Rows written before are rewritten to the same width (SQLite's `%f` keeps
-- milliseconds).
UPDATE executions SET start_date = strftime('%Y-%m-%dT%H:%M:%f', start_date) || '000Z'
WHERE start_date IS NOT NULL;
UPDATE executions SET end_date = strftime('%Y-%m-%dT%H:%M:%f', end_date) || '000Z'
WHERE end_date IS NOT NULL;
