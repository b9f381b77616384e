"""Versioned schema of the PostgreSQL store, with the TimescaleDB variant of each step.

A migration is applied once, in order, inside a transaction, and recorded in
``schema_migrations`` with the mode it was applied in ("timescaledb" or "postgresql").
Each step has the statements both modes share, then the ones of its mode: hypertables,
compression and continuous aggregates with TimescaleDB; B-tree and BRIN indexes without.
Never edit a released migration: add the next one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    common: tuple[str, ...]
    timescale: tuple[str, ...] = ()
    plain: tuple[str, ...] = ()

    def statements(self, timescale: bool) -> tuple[str, ...]:
        return self.common + (self.timescale if timescale else self.plain)


BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    mode text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""

# Sufficient statistics per bucket; the 1 h aggregate is built on the 1 min one
# (hierarchical), so every good measurement is aggregated once.
_STATS_1M = """
CREATE MATERIALIZED VIEW measurement_stats_1m
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT characteristic,
       time_bucket(INTERVAL '1 minute', time) AS bucket,
       count(*) AS n,
       sum(value) AS total,
       sum(value * value) AS total_sq,
       min(value) AS minimum,
       max(value) AS maximum
FROM measurements
WHERE quality = 'good'
GROUP BY characteristic, time_bucket(INTERVAL '1 minute', time)
WITH NO DATA
"""

_STATS_1H = """
CREATE MATERIALIZED VIEW measurement_stats_1h
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT characteristic,
       time_bucket(INTERVAL '1 hour', bucket) AS bucket,
       sum(n)::bigint AS n,
       sum(total) AS total,
       sum(total_sq) AS total_sq,
       min(minimum) AS minimum,
       max(maximum) AS maximum
FROM measurement_stats_1m
GROUP BY characteristic, time_bucket(INTERVAL '1 hour', bucket)
WITH NO DATA
"""

# Identifiers are compared byte-wise (COLLATE "C"): faster keys than a language collation,
# and the same order as the SQLite store whatever locale the cluster was created with.
# Without TimescaleDB, the 1-minute statistics are a table kept by a statement trigger:
# it sees exactly the rows each INSERT or COPY added (not those ON CONFLICT skipped) and
# folds them in within the same transaction. Keys are locked in order (no deadlocks
# between concurrent writers).
_PLAIN_STATS_1M = (
    """
    CREATE TABLE measurement_stats_1m (
        characteristic text COLLATE "C" NOT NULL, bucket timestamptz NOT NULL,
        n bigint NOT NULL, total double precision NOT NULL,
        total_sq double precision NOT NULL, minimum double precision NOT NULL,
        maximum double precision NOT NULL,
        PRIMARY KEY (characteristic, bucket)
    )
    """,
    """
    CREATE FUNCTION spcmon_fold_stats_1m() RETURNS trigger LANGUAGE plpgsql AS $fold$
    BEGIN
        INSERT INTO measurement_stats_1m AS s
            (characteristic, bucket, n, total, total_sq, minimum, maximum)
        SELECT characteristic,
               date_bin(INTERVAL '1 minute', time, TIMESTAMPTZ '2000-01-03 00:00:00+00'),
               count(*), sum(value), sum(value * value), min(value), max(value)
        FROM new_rows
        WHERE quality = 'good'
        GROUP BY 1, 2
        ORDER BY 1, 2
        ON CONFLICT (characteristic, bucket) DO UPDATE SET
            n = s.n + excluded.n,
            total = s.total + excluded.total,
            total_sq = s.total_sq + excluded.total_sq,
            minimum = least(s.minimum, excluded.minimum),
            maximum = greatest(s.maximum, excluded.maximum);
        RETURN NULL;
    END
    $fold$
    """,
    """
    CREATE TRIGGER measurements_fold_stats_1m AFTER INSERT ON measurements
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION spcmon_fold_stats_1m()
    """,
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "base",
        common=(
            """
            CREATE TABLE characteristics (
                id text PRIMARY KEY, name text NOT NULL, unit text NOT NULL,
                line text NOT NULL, process text NOT NULL,
                lsl double precision, usl double precision, target double precision,
                chart text NOT NULL, subgroup_size integer NOT NULL, rules jsonb NOT NULL,
                source_kind text, source_address text, origin text NOT NULL,
                monitoring jsonb NOT NULL
            )
            """,
            # seq is the storage order: restart replay feeds the engine in that order
            "CREATE SEQUENCE measurement_seq",
            """
            CREATE TABLE measurements (
                time timestamptz NOT NULL, characteristic text COLLATE "C" NOT NULL,
                value double precision NOT NULL, ingest_id text COLLATE "C" NOT NULL,
                source text NOT NULL, part text, lot text, quality text NOT NULL,
                seq bigint NOT NULL DEFAULT nextval('measurement_seq')
            )
            """,
            # the natural key: a resend repeats all three. One B-tree serves both the
            # idempotent insert and every per-characteristic time-range read, and keeps
            # inserts local (times grow per characteristic); a hypertable's unique index
            # must contain its time column, which this one does.
            "CREATE UNIQUE INDEX measurements_key "
            "ON measurements (characteristic, time, ingest_id)",
            # seq grows with the heap: a tiny BRIN finds "stored after X" in the last blocks
            "CREATE INDEX measurements_seq_brin ON measurements USING brin (seq)",
            """
            CREATE TABLE verdicts (
                time timestamptz NOT NULL, process text COLLATE "C" NOT NULL,
                part text NOT NULL, ok boolean NOT NULL, first_pass boolean NOT NULL,
                defects jsonb NOT NULL, ingest_id text COLLATE "C" NOT NULL,
                source text NOT NULL
            )
            """,
            "CREATE UNIQUE INDEX verdicts_key ON verdicts (process, time, ingest_id)",
            """
            CREATE TABLE cost_events (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                ingest_id text NOT NULL UNIQUE, time timestamptz NOT NULL,
                scope text NOT NULL, category text NOT NULL,
                amount double precision NOT NULL, currency text NOT NULL,
                source text NOT NULL, note text
            )
            """,
            "CREATE INDEX cost_events_by_time ON cost_events (time)",
            """
            CREATE TABLE limit_sets (
                characteristic text NOT NULL, version integer NOT NULL,
                center double precision NOT NULL, ucl double precision NOT NULL,
                lcl double precision NOT NULL, sigma double precision NOT NULL,
                mr_center double precision NOT NULL, mr_ucl double precision NOT NULL,
                baseline_n integer NOT NULL, disp_lcl double precision NOT NULL,
                created_at timestamptz NOT NULL, reason text NOT NULL, author text NOT NULL,
                PRIMARY KEY (characteristic, version)
            )
            """,
            """
            CREATE TABLE alarms (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                characteristic text NOT NULL, rule text NOT NULL, chart text NOT NULL,
                state text NOT NULL, opened_at timestamptz NOT NULL,
                last_at timestamptz NOT NULL, count integer NOT NULL,
                limit_version integer NOT NULL, last_value double precision NOT NULL,
                message text NOT NULL
            )
            """,
            "CREATE INDEX alarms_by_char_state ON alarms (characteristic, state)",
            """
            CREATE TABLE alarm_events (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                alarm_id bigint NOT NULL REFERENCES alarms (id),
                recorded_at timestamptz NOT NULL, state text NOT NULL,
                count integer NOT NULL, last_value double precision NOT NULL
            )
            """,
            "CREATE INDEX alarm_events_by_alarm ON alarm_events (alarm_id, id)",
            # payload is bytea: rejected input may hold bytes PostgreSQL text cannot (NUL)
            """
            CREATE TABLE dead_letters (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                received_at timestamptz NOT NULL, source text NOT NULL,
                reason text NOT NULL, payload bytea NOT NULL
            )
            """,
            """
            CREATE TABLE grade_snapshots (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                taken_at timestamptz NOT NULL, level text NOT NULL, entity text NOT NULL,
                grade smallint, limiting_metric text, metrics jsonb NOT NULL
            )
            """,
            "CREATE INDEX grade_snapshots_by_entity ON grade_snapshots (level, entity, taken_at)",
        ),
        timescale=(
            # chunk intervals are set again at every start from the configured rate
            # no default time index: the natural-key index leads with the segment column
            "SELECT create_hypertable('measurements', by_range('time', INTERVAL '1 day'), "
            "create_default_indexes => false)",
            "SELECT create_hypertable('verdicts', by_range('time', INTERVAL '7 days'), "
            "create_default_indexes => false)",
            """
            ALTER TABLE measurements SET (
                timescaledb.compress,
                timescaledb.compress_segmentby = 'characteristic',
                timescaledb.compress_orderby = 'time DESC, seq DESC'
            )
            """,
            """
            ALTER TABLE verdicts SET (
                timescaledb.compress,
                timescaledb.compress_segmentby = 'process',
                timescaledb.compress_orderby = 'time DESC'
            )
            """,
            _STATS_1M,
            _STATS_1H,
        ),
        plain=(
            # BRIN: tiny, and measurements arrive nearly in time order
            "CREATE INDEX measurements_time_brin ON measurements USING brin (time)",
            "CREATE INDEX verdicts_time_brin ON verdicts USING brin (time)",
            *_PLAIN_STATS_1M,
        ),
    ),
    # who acknowledged an alarm, when and why; the audit event of the acknowledgement
    # names who and keeps their comment; the measurement time after which each limit set
    # judges points. Nullable columns: existing rows stay as they are.
    Migration(
        2,
        "alarm acknowledgement, limit effective time",
        common=(
            """
            ALTER TABLE alarms
                ADD COLUMN acknowledged_by text,
                ADD COLUMN acknowledged_at timestamptz,
                ADD COLUMN ack_comment text,
                ADD COLUMN ack_cause text,
                ADD COLUMN ack_action text
            """,
            "ALTER TABLE alarm_events ADD COLUMN actor text, ADD COLUMN note text",
            "ALTER TABLE limit_sets ADD COLUMN effective_at timestamptz",
        ),
    ),
    # alarms become incidents: the line and process they belong to, a severity, and the
    # grouped characteristics, evidence, escalation and resolution as one jsonb document
    Migration(
        3,
        "incidents: line, process, severity, details",
        common=(
            """
            ALTER TABLE alarms
                ADD COLUMN line text NOT NULL DEFAULT '',
                ADD COLUMN process text NOT NULL DEFAULT '',
                ADD COLUMN severity text NOT NULL DEFAULT 'warning',
                ADD COLUMN details jsonb NOT NULL DEFAULT '{}'
            """,
        ),
    ),
    # hourly capability sums per characteristic: Cpk over any period without reading
    # every raw value (spc.capability_sums); a plain table, small (characteristics x hours)
    Migration(
        4,
        "hourly capability sums",
        common=(
            """
            CREATE TABLE capability_sums (
                characteristic text NOT NULL, start timestamptz NOT NULL,
                shift double precision NOT NULL, n bigint NOT NULL,
                sum_d double precision NOT NULL, sum_d2 double precision NOT NULL,
                disp_sum double precision NOT NULL, disp_n bigint NOT NULL,
                out_of_spec bigint NOT NULL,
                PRIMARY KEY (characteristic, start, shift)
            )
            """,
            "CREATE INDEX capability_sums_by_start ON capability_sums (start)",
        ),
    ),
)

LATEST_VERSION = MIGRATIONS[-1].version
