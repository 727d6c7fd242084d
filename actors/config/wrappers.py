"""``config/llms/wrappers.yaml``: named clients over a group ref or a polling pool."""

from __future__ import annotations

import enum
from typing import Any

from pydantic import Field, PositiveFloat, PositiveInt, ValidationInfo, field_validator

from actors.config.base import MAX_SECONDS, Strict

__all__ = [
    "WrapperConfig",
    "WrapperType",
]


class WrapperType(enum.StrEnum):
    TASK_GROUP = "task_group"
    POLLING_POOL = "polling_pool"


class WrapperConfig(Strict):
    """One entry of ``config/llms/wrappers.yaml``: a named client over a group ref or a pool."""

    type: WrapperType
    target: str | None = Field(None, validate_default=True, description="group ref, for task_group")
    fallback_groups: list[str] | None = Field(
        None, validate_default=True, description="overrides the group's"
    )
    pool: str | None = Field(None, validate_default=True, description="pool name, for polling_pool")
    max_instance_attempts: PositiveInt | None = Field(
        None, validate_default=True, description="overrides the pool's"
    )
    timeout: PositiveFloat | None = Field(
        None, le=MAX_SECONDS, description="deadline of one request, every attempt included"
    )
    description: str = ""

    @field_validator("target", "fallback_groups", "pool", "max_instance_attempts")
    @classmethod
    def _fields_of_type(cls, value: Any, info: ValidationInfo) -> Any:
        kind = info.data.get("type")
        if kind is None:
            return value
        own = {
            "target": WrapperType.TASK_GROUP,
            "fallback_groups": WrapperType.TASK_GROUP,
            "pool": WrapperType.POLLING_POOL,
            "max_instance_attempts": WrapperType.POLLING_POOL,
        }
        field = info.field_name
        if value is None:
            if field == "target" and kind is WrapperType.TASK_GROUP:
                raise ValueError(
                    "required for a task_group wrapper: the group or group.tier it calls, e.g. fast_group.echelon1"
                )
            if field == "pool" and kind is WrapperType.POLLING_POOL:
                raise ValueError(
                    "required for a polling_pool wrapper: the name of a pool under polling_pools/"
                )
            return value
        assert field is not None  # a field validator always knows its field
        if own[field] is not kind:
            raise ValueError(f"only a {own[field].value} wrapper takes {field}; this one is {kind.value}")
        return value
