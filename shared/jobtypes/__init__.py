"""The registry of job types: each type is one module that says how to validate its input,
how to ask Claude, and how to read the answer. Adding a type is adding a module here.
"""

from __future__ import annotations

from shared.jobtypes.assistant import ASSISTANT, FORECAST
from shared.jobtypes.base import InvalidModelOutput, JobType, get, names, register
from shared.jobtypes.chat import CHAT
from shared.jobtypes.drought import DROUGHT

for _job_type in (CHAT, DROUGHT, ASSISTANT, FORECAST):
    register(_job_type)

__all__ = ["InvalidModelOutput", "JobType", "get", "names", "register"]
