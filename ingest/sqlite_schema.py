"""Schema of the embedded SQLite store (times are integer microseconds since the epoch, UTC)."""

SCHEMA_VERSION = 6

# Columns added after a table was first created: (table, column, definition). Applied
# in place to an existing file whose table lacks them (SQLite adds columns cheaply).
ADDED_COLUMNS = (
    ("characteristics", "monitoring", 'TEXT NOT NULL DEFAULT \'{"ewma": null, "cusum": null}\''),
    ("limit_sets", "disp_lcl", "REAL NOT NULL DEFAULT 0"),
    ("limit_sets", "author", "TEXT NOT NULL DEFAULT 'system'"),
    ("alarms", "acknowledged_by", "TEXT"),
    ("alarms", "acknowledged_us", "INTEGER"),
    ("alarms", "ack_comment", "TEXT"),
    ("alarms", "ack_cause", "TEXT"),
    ("alarms", "ack_action", "TEXT"),
    ("alarm_events", "actor", "TEXT"),
    ("alarm_events", "note", "TEXT"),
    ("limit_sets", "effective_us", "INTEGER"),
    ("alarms", "line", "TEXT NOT NULL DEFAULT ''"),
    ("alarms", "process", "TEXT NOT NULL DEFAULT ''"),
    ("alarms", "severity", "TEXT NOT NULL DEFAULT 'warning'"),
    ("alarms", "details", "TEXT NOT NULL DEFAULT '{}'"),
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS characteristics (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, unit TEXT NOT NULL, line TEXT NOT NULL,
    process TEXT NOT NULL, lsl REAL, usl REAL, target REAL, chart TEXT NOT NULL,
    subgroup_size INTEGER NOT NULL, rules TEXT NOT NULL, source_kind TEXT,
    source_address TEXT, origin TEXT NOT NULL, monitoring TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS measurements (
    id INTEGER PRIMARY KEY, ingest_id TEXT NOT NULL UNIQUE, characteristic TEXT NOT NULL,
    time_us INTEGER NOT NULL, value REAL NOT NULL, part TEXT, lot TEXT,
    source TEXT NOT NULL, quality TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS measurements_by_char_time ON measurements (characteristic, time_us);
CREATE TABLE IF NOT EXISTS verdicts (
    id INTEGER PRIMARY KEY, ingest_id TEXT NOT NULL UNIQUE, process TEXT NOT NULL,
    time_us INTEGER NOT NULL, part TEXT NOT NULL, ok INTEGER NOT NULL,
    first_pass INTEGER NOT NULL, defects TEXT NOT NULL, source TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS verdicts_by_process_time ON verdicts (process, time_us);
CREATE TABLE IF NOT EXISTS cost_events (
    id INTEGER PRIMARY KEY, ingest_id TEXT NOT NULL UNIQUE, scope TEXT NOT NULL,
    time_us INTEGER NOT NULL, category TEXT NOT NULL, amount REAL NOT NULL,
    currency TEXT NOT NULL, source TEXT NOT NULL, note TEXT
);
CREATE TABLE IF NOT EXISTS limit_sets (
    characteristic TEXT NOT NULL, version INTEGER NOT NULL, center REAL NOT NULL,
    ucl REAL NOT NULL, lcl REAL NOT NULL, sigma REAL NOT NULL, mr_center REAL NOT NULL,
    mr_ucl REAL NOT NULL, baseline_n INTEGER NOT NULL, created_us INTEGER NOT NULL,
    reason TEXT NOT NULL, disp_lcl REAL NOT NULL DEFAULT 0,
    author TEXT NOT NULL DEFAULT 'system', effective_us INTEGER,
    PRIMARY KEY (characteristic, version)
);
CREATE TABLE IF NOT EXISTS alarms (
    id INTEGER PRIMARY KEY, characteristic TEXT NOT NULL, rule TEXT NOT NULL,
    chart TEXT NOT NULL, state TEXT NOT NULL, opened_us INTEGER NOT NULL,
    last_us INTEGER NOT NULL, count INTEGER NOT NULL, limit_version INTEGER NOT NULL,
    last_value REAL NOT NULL, message TEXT NOT NULL, acknowledged_by TEXT,
    acknowledged_us INTEGER, ack_comment TEXT, ack_cause TEXT, ack_action TEXT,
    line TEXT NOT NULL DEFAULT '', process TEXT NOT NULL DEFAULT '',
    severity TEXT NOT NULL DEFAULT 'warning', details TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS alarms_by_char_state ON alarms (characteristic, state);
CREATE TABLE IF NOT EXISTS alarm_events (
    id INTEGER PRIMARY KEY, alarm_id INTEGER NOT NULL REFERENCES alarms (id),
    recorded_us INTEGER NOT NULL, state TEXT NOT NULL, count INTEGER NOT NULL,
    last_value REAL NOT NULL, actor TEXT, note TEXT
);
CREATE INDEX IF NOT EXISTS alarm_events_by_alarm ON alarm_events (alarm_id, id);
CREATE TABLE IF NOT EXISTS grade_snapshots (
    id INTEGER PRIMARY KEY, taken_us INTEGER NOT NULL, level TEXT NOT NULL,
    entity TEXT NOT NULL, grade INTEGER, limiting_metric TEXT, metrics TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS grade_snapshots_by_entity ON grade_snapshots (level, entity, taken_us);
CREATE TABLE IF NOT EXISTS capability_sums (
    characteristic TEXT NOT NULL, start_us INTEGER NOT NULL, shift REAL NOT NULL,
    n INTEGER NOT NULL, sum_d REAL NOT NULL, sum_d2 REAL NOT NULL, disp_sum REAL NOT NULL,
    disp_n INTEGER NOT NULL, out_of_spec INTEGER NOT NULL,
    PRIMARY KEY (characteristic, start_us, shift)
);
CREATE INDEX IF NOT EXISTS capability_sums_by_start ON capability_sums (start_us);
CREATE INDEX IF NOT EXISTS cost_events_by_time ON cost_events (time_us);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY, received_us INTEGER NOT NULL, source TEXT NOT NULL,
    reason TEXT NOT NULL, payload TEXT NOT NULL
);
"""
