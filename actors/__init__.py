"""The actor runtime: the dispatcher and the agent roles, each a consumer group on Kafka.

Kafka plumbing:
- `transactions`: the consume-transform-produce loop (one transaction per input record);
- `_commit`: one transaction of that loop (an outbox, its changelog records, the offset);
- `poison`: records that cannot be produced (sized before sending) or keep failing (attempts);
- `actor`: `ActorService`, an agent role's handler (decode, join arrival, retries, outbox);
- `dispatcher`: `DispatcherService`, a task's first step(s);
- `outbox`: the records of a transaction (next steps, events, results, dead letters);
- `usage_emitter`: call-time usage events, outside the transaction.

Decisions (no Kafka):
- `transition`: what a step's result sends next, as a pure function;
- `routing`: edges, step ids, fan-out tickets and join merges over a routing table;
- `joins`: the join store in a partition's state; `delegation`: the supervisor's hand-offs;
- `agent_loop`, `model_calls`, `tool_calls`, `conversation`: the agent loop of one step;
- `results`, `profile`, `ports`, `catalog_tools`, `settings`: its data, seams and settings.
"""
