"""How a group is named to people: one rule shared by the reports, the figures and the error messages.

A leaf module (it imports nothing of usvpipe), so that every stage, figure and report can
name groups the same way without importing each other.
"""
from __future__ import annotations

import math

#: How a recording without a group (a file not under a group folder, or an empty ``group`` cell) is named to people.
NO_GROUP_LABEL = "(no group)"


def group_label(group) -> str:
    """``group`` as a report or figure shows it: :data:`NO_GROUP_LABEL` for ``""``, ``None`` or NaN (how a
    CSV read back gives an empty group)."""
    if group is None or (isinstance(group, float) and math.isnan(group)) or str(group) == "":
        return NO_GROUP_LABEL
    return str(group)
