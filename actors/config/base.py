"""The base every config model derives from, and the bounds its fields share."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "MAX_PORT",
    "MAX_SECONDS",
    "FinitePositive",
    "Strict",
]


#: The largest TCP port; a URL's port must be 1 to this.
MAX_PORT = 65_535

#: The longest duration any setting may give, a day: longer is a slip (milliseconds written as
#: seconds), and far longer overflows the C timeouts that sockets and locks take.
MAX_SECONDS = 86_400.0


#: A positive, finite number (a weight).
FinitePositive = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class Strict(BaseModel):
    """Base of every config model: frozen, and an unknown key is an error, not a silent no-op."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Fields the loader fills; never suggested as a fix for a misspelt key.
    hidden_keys: ClassVar[frozenset[str]] = frozenset()
