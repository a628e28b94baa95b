DROP TABLE audit_log_entries;
