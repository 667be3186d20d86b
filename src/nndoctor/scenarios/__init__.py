"""A catalog of small sick and healthy networks, each declaring the root cause it expects.

``CATALOG`` lists them; ``Scenario.build(seed)`` makes a fresh :class:`Setup`;
:func:`run_catalog` diagnoses them all and :func:`format_table` prints the doctor's accuracy.
``TORCH_CATALOG`` lists the PyTorch ones (torch is imported only when one is built) and
:func:`run_plain_loop` trains a PyTorch setup the way a user's script does.
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
from nndoctor.scenarios.torch_cases import (
    TORCH_CATALOG,
    TORCH_HEALTHY,
    TORCH_SICK,
    PlainRun,
    run_plain_loop,
)

__all__ = [
    "CATALOG",
    "HEALTHY",
    "SICK",
    "TORCH_CATALOG",
    "TORCH_HEALTHY",
    "TORCH_SICK",
    "PlainRun",
    "Scenario",
    "ScenarioResult",
    "Setup",
    "format_table",
    "run_catalog",
    "run_plain_loop",
    "run_scenario",
    "select",
]
