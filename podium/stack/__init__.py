"""The local development stack: real Apache Kafka (KRaft) and PostgreSQL on 127.0.0.1.

`podium stack up|status|down` drives it; the tests start it through `up` when it is not running.
Everything lives in `stack_dir()` (`.podium/`, or `PODIUM_STACK_DIR`), recorded in its state file.
"""

from podium.stack._postgres import masked as masked_dsn
from podium.stack._processes import StackError
from podium.stack._settings import KAFKA_VERSION, StackSettings
from podium.stack._stack import ComponentStatus, UpReport, down, grant_agent_users, status, up
from podium.stack.state import StackState, load_state, save_state, stack_dir, state_file

__all__ = [
    "KAFKA_VERSION",
    "ComponentStatus",
    "StackError",
    "StackSettings",
    "StackState",
    "UpReport",
    "down",
    "grant_agent_users",
    "load_state",
    "masked_dsn",
    "save_state",
    "stack_dir",
    "state_file",
    "status",
    "up",
]
