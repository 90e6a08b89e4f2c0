-- Support reads a user's audit trail newest first, a page at a time below a record's id: an
-- index in that order answers each page from its first entries. It replaces the index by
-- time, which nothing reads (ids follow commit order closely enough for a trail, and exactly
-- for paging).
CREATE INDEX IF NOT EXISTS idx_user_settings_audit_subject_id
    ON shared.user_settings_audit (subject_user_id, id);
DROP INDEX IF EXISTS shared.idx_user_settings_audit_subject_at;
