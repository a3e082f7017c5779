-- Tasks submitted through `POST /v1/tasks` with an idempotency key: the first submission of a
-- key (per token name) records its task id, and a retry with that key gets the same id back.
CREATE TABLE task_submissions (
    submitted_by    text NOT NULL,
    idempotency_key text NOT NULL,
    task_id         text NOT NULL,
    system          text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (submitted_by, idempotency_key)
);
GRANT SELECT, INSERT, DELETE ON task_submissions TO podium_ledger_writer;
