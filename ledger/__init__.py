"""The ledger: every event and result of every task, hash-chained per task in PostgreSQL.

- `service`: `podium ledger`, the ingest loop and the HTTP API as one service (`LedgerService`).
- `ingest`: the consumer loop (`Ingester`): fetch, prepare ahead, store, dead-letter, commit.
- `batch`: what one poll becomes, pure: decoded events, task-disjoint parts, chain heads cache.
- `writer`: storing the parts of a batch (`BatchWriter`), retried while PostgreSQL is away.
- `plan`, `chain`: the batch plan and the hash chain, pure; `store`: the batch's transaction.
- `api`, `queries`, `auth`, `client`: the HTTP API, its queries, its tokens, its client.
- `audit`: chain verification; `migrate`: the schema; `settings`: `PODIUM_LEDGER_*`.
"""
