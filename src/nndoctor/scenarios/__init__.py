"""A catalog of small sick and healthy networks, each declaring the root cause it expects.

``CATALOG`` lists them; ``Scenario.build(seed)`` makes a fresh :class:`Setup`;
:func:`run_catalog` diagnoses them all and :func:`format_table` prints the doctor's accuracy.
"""

from nndoctor.scenarios._base import Scenario, Setup
from nndoctor.scenarios.healthy import HEALTHY
from nndoctor.scenarios.run import (
    CATALOG,
    ScenarioResult,
    format_table,
    run_catalog,
    run_scenario,
    select,
)
from nndoctor.scenarios.sick import SICK

__all__ = [
    "CATALOG",
    "HEALTHY",
    "SICK",
    "Scenario",
    "ScenarioResult",
    "Setup",
    "format_table",
    "run_catalog",
    "run_scenario",
    "select",
]
