"""The one owner of request state: the seam (``StateOwner``) and its in-process implementation."""

from actors.state.local import LocalState
from actors.state.owner import ChangeListener, StateOwner, Ticket, Waiter

__all__ = ["ChangeListener", "LocalState", "StateOwner", "Ticket", "Waiter"]
