"""Directory use cases shared by the REST API and the CLI: accounts, operators, supervisors,
groups and numbers, each scoped to one account.

``DirectoryService`` is one object made of one part per aggregate: ``accounts``, ``people``
(operators and supervisors), ``groups`` (groups and their numbers); ``base`` holds what they
share, and the announcement of each committed change (``DirectoryChange``) to listeners.
"""

from voicemgmt.services.directory.accounts import AccountUseCases
from voicemgmt.services.directory.base import (
    UNCHANGED,
    ChangeListener,
    DirectoryChange,
    Unchanged,
)
from voicemgmt.services.directory.groups import GroupUseCases
from voicemgmt.services.directory.people import PeopleUseCases


class DirectoryService(AccountUseCases, PeopleUseCases, GroupUseCases):
    """Every directory use case, over one unit-of-work factory."""


__all__ = ["UNCHANGED", "ChangeListener", "DirectoryChange", "DirectoryService", "Unchanged"]
