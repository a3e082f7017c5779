"""The ledger: every event and result of every task, hash-chained per task in PostgreSQL.

- `service`: `podium ledger`, the ingest loop, the anchoring and the HTTP API as one service
  (`LedgerService`).
- `ingest`: the consumer loop (`Ingester`): fetch, prepare ahead, store, dead-letter, commit.
- `batch`: what one poll becomes, pure: decoded events, task-disjoint parts, chain heads cache.
- `writer`: storing the parts of a batch (`BatchWriter`), retried while PostgreSQL is away.
- `plan`, `chain`: the batch plan and the hash chain, pure; `store`: the batch's transaction.
- `api`, `queries`, `auth`, `client`: the HTTP API, its queries, its tokens, its client.
- `anchors`, `anchoring`: the signed chain heads (pure), and their publishing to Kafka and
  reading back (`Anchorer`, `read_anchors`).
- `audit`: verification of the rows against the anchors, and of the rollups against the events
  (`_rollups`); `migrate`: the schema; `settings`: `PODIUM_LEDGER_*`.
"""
