-- The ledger writes as podium_ledger_writer, a role that cannot log in and cannot change or
-- remove an event: INSERT and SELECT on events, and what the rollups need on the other tables.
-- Its connections log in as the database owner and `SET ROLE` to it at connection start.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'podium_ledger_writer') THEN
        BEGIN
            CREATE ROLE podium_ledger_writer NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- created meanwhile by the migration of another schema
        END;
    END IF;
    IF NOT pg_has_role(current_user, 'podium_ledger_writer', 'MEMBER') THEN
        EXECUTE format('GRANT podium_ledger_writer TO %I', current_user);
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO podium_ledger_writer', current_schema());
END;
$$;

-- A global sequence over every event, without gaps: assigned by the writer under the row lock of
-- ledger_sequence, in commit order, so a missing row or task shows as a gap in events.gseq.
ALTER TABLE events ADD COLUMN gseq bigint;
ALTER TABLE events DISABLE TRIGGER events_no_update_delete;
UPDATE events SET gseq = numbered.n
    FROM (SELECT event_id, row_number() OVER (ORDER BY ingested_at, task_id, seq) AS n
          FROM events) AS numbered
    WHERE events.event_id = numbered.event_id;
ALTER TABLE events ENABLE TRIGGER events_no_update_delete;
ALTER TABLE events ALTER COLUMN gseq SET NOT NULL;
CREATE UNIQUE INDEX events_gseq ON events (gseq);

CREATE TABLE ledger_sequence (
    one  boolean PRIMARY KEY DEFAULT true CHECK (one),
    last bigint NOT NULL
);
INSERT INTO ledger_sequence (last) SELECT coalesce(max(gseq), 0) FROM events;

-- The global sequence number up to which the chain heads were last signed and published.
CREATE TABLE ledger_anchored (
    one  boolean PRIMARY KEY DEFAULT true CHECK (one),
    gseq bigint NOT NULL
);
INSERT INTO ledger_anchored (gseq) VALUES (0);

GRANT SELECT, INSERT ON events TO podium_ledger_writer;
GRANT SELECT, INSERT, UPDATE ON chain_heads, tasks, spend_hourly, approvals, api_tokens
    TO podium_ledger_writer;
GRANT SELECT, UPDATE ON ledger_sequence, ledger_anchored TO podium_ledger_writer;
DO $$
BEGIN
    EXECUTE format('GRANT USAGE ON SEQUENCE %s TO podium_ledger_writer',
                   pg_get_serial_sequence('api_tokens', 'id'));
END;
$$;
