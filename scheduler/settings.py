"""`PODIUM_SCHEDULER_*`: the settings of the scheduler, loaded once at start."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SchedulerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PODIUM_SCHEDULER_", extra="forbid")

    tick_s: float = Field(default=0.5, gt=0, le=60, description="how often schedules are evaluated")
    task_timeout_s: float = Field(
        default=600.0,
        gt=0,
        le=86400,
        description="deadline of a started task; a run still "
        "without a result after it no longer counts as active",
    )
    max_slots_per_tick: int = Field(
        default=100, ge=1, le=10000, description="slots of one schedule fired per evaluation"
    )
    grace_s: float = Field(default=10.0, ge=0)
    session_timeout_ms: int = Field(default=10000, ge=6000)
