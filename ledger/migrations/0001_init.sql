-- The ledger's tables. Applied inside one transaction, with search_path set to the ledger schema.

-- Every event, append-only, hash-chained per task: hash = sha256(prev_hash || '\n' || body).
CREATE TABLE events (
    event_id    text PRIMARY KEY,
    task_id     text NOT NULL,
    seq         bigint NOT NULL CHECK (seq >= 1),
    type        text NOT NULL,
    system      text NOT NULL DEFAULT '',
    agent       text NOT NULL DEFAULT '',
    step_id     text NOT NULL DEFAULT '',
    attempt     integer NOT NULL DEFAULT 0,
    at          timestamptz NOT NULL,
    trace_id    text NOT NULL DEFAULT '',
    source      text NOT NULL DEFAULT '',
    data        jsonb NOT NULL,
    body        text NOT NULL,
    prev_hash   text NOT NULL,
    hash        text NOT NULL,
    topic       text NOT NULL DEFAULT '',
    kafka_partition integer NOT NULL DEFAULT -1,
    kafka_offset    bigint NOT NULL DEFAULT -1,
    ingested_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (task_id, seq)
);
CREATE INDEX events_denials ON events (at)
    WHERE type = 'policy.decided' AND data->>'decision' = 'deny';
CREATE INDEX events_model_calls ON events (at) WHERE type = 'model.called';

-- The last link of every chain: deleting the tail of a chain is caught by comparing with it.
CREATE TABLE chain_heads (
    task_id text PRIMARY KEY,
    seq     bigint NOT NULL,
    hash    text NOT NULL
);

-- Append-only: a trigger rejects UPDATE, DELETE and TRUNCATE whatever the role (grants alone do
-- not bind the table's owner). Tampering that goes around it (a superuser disabling triggers) is
-- what the hash chain and `podium audit verify` catch.
CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger events table is append-only (% rejected)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER events_no_update_delete BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_append_only();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_append_only();
REVOKE UPDATE, DELETE, TRUNCATE ON events FROM PUBLIC;

CREATE FUNCTION task_status_rank(status text) RETURNS integer LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE status
        WHEN 'unknown' THEN 0 WHEN 'requested' THEN 1 WHEN 'running' THEN 2 ELSE 3 END
$$;

CREATE TABLE tasks (
    task_id        text PRIMARY KEY,
    system         text NOT NULL DEFAULT '',
    status         text NOT NULL DEFAULT 'unknown',
    input          jsonb,
    output         text,
    error          text,
    submitted_by   text NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL,
    started_at     timestamptz,
    finished_at    timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    model_calls    bigint NOT NULL DEFAULT 0,
    unpriced_calls bigint NOT NULL DEFAULT 0,
    input_tokens   bigint NOT NULL DEFAULT 0,
    output_tokens  bigint NOT NULL DEFAULT 0,
    cached_tokens  bigint NOT NULL DEFAULT 0,
    cost_usd       numeric(24, 12) NOT NULL DEFAULT 0,
    events         bigint NOT NULL DEFAULT 0
);
CREATE INDEX tasks_created ON tasks (created_at DESC, task_id DESC);
CREATE INDEX tasks_system_created ON tasks (system, created_at DESC, task_id DESC);

-- Spend of model calls by hour, system, agent and model, updated in the transaction that stores
-- the model.called events. Calls without a known price count in unpriced_calls, never in USD.
CREATE TABLE spend_hourly (
    hour           timestamptz NOT NULL,
    system         text NOT NULL,
    agent          text NOT NULL,
    model          text NOT NULL,
    calls          bigint NOT NULL DEFAULT 0,
    unpriced_calls bigint NOT NULL DEFAULT 0,
    input_tokens   bigint NOT NULL DEFAULT 0,
    output_tokens  bigint NOT NULL DEFAULT 0,
    cached_tokens  bigint NOT NULL DEFAULT 0,
    cost_usd       numeric(24, 12) NOT NULL DEFAULT 0,
    PRIMARY KEY (hour, system, agent, model)
);

CREATE TABLE approvals (
    approval_id    text PRIMARY KEY,
    task_id        text NOT NULL,
    system         text NOT NULL DEFAULT '',
    agent          text NOT NULL DEFAULT '',
    step_id        text NOT NULL DEFAULT '',
    action         text NOT NULL DEFAULT '',
    tool           text,
    model          text,
    arguments      jsonb NOT NULL DEFAULT '{}',
    reason         text NOT NULL DEFAULT '',
    status         text NOT NULL DEFAULT 'pending',
    requested_at   timestamptz,
    expires_at     timestamptz,
    decided_by     text NOT NULL DEFAULT '',
    decided_at     timestamptz,
    decision_reason text NOT NULL DEFAULT ''
);
CREATE INDEX approvals_status ON approvals (status, requested_at);

-- API bearer tokens, stored as SHA-256 of the token; the token itself is shown once.
CREATE TABLE api_tokens (
    token_hash text PRIMARY KEY,
    name       text NOT NULL,
    scopes     text[] NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
