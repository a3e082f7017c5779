"""The scheduler: starts the task template of every applied `TaskSchedule` on each cron slot,
exactly once per slot, whatever the number of replicas and restarts.

Modules:
- `slots`: the pure part, no Kafka: the slots of a cron expression in a time zone, which are due
  since the last one decided (within the catch-up window), and what the concurrency policy does
  with each; the task id of a slot.
- `state`: what is remembered of each schedule, on the compacted `scheduler.state` topic.
- `service`: `SchedulerService`, one replica of the scheduler group: ownership of state
  partitions, and each firing as one Kafka transaction.
- `status`: the states read back, and the next slot (`podium get schedules`).
- `settings`: `SchedulerSettings` (`PODIUM_SCHEDULER_*`).
- `_results`: which started tasks have a result yet (`podium.results`).
"""
