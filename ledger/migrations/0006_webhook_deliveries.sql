-- Deliveries of TaskWebhooks, by event id: the first delivery of an event records the task it
-- started, and a redelivery within the webhook's dedupe window gets that task back instead of
-- submitting again. Rows past their window are removed as deliveries arrive.
CREATE TABLE webhook_deliveries (
    webhook     text NOT NULL,
    event_id    text NOT NULL,
    task_id     text NOT NULL,
    received_at timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (webhook, event_id)
);
CREATE INDEX webhook_deliveries_expiry ON webhook_deliveries (expires_at);
GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_deliveries TO podium_ledger_writer;
