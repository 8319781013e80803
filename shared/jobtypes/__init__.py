"""The registry of job types: each type is one module that says how to validate its input,
how to ask Claude, and how to read the answer. Adding a type is adding a module here.
"""

from __future__ import annotations

from shared.jobtypes.base import JobType, get, names, register
from shared.jobtypes.chat import CHAT

register(CHAT)

__all__ = ["JobType", "get", "names", "register"]
