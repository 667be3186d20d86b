"""Two reports in one Jupyter notebook, executed by nbclient in a real kernel (without
ipywidgets, as many installs are): each report's view has ids of its own and links that land
in it, adds at most 100 KB to the notebook, shows a one-line text form, and nothing in the
notebook is a warning (tqdm's "IProgress not found" was one)."""

from __future__ import annotations

import json
import sys
from html.parser import HTMLParser

import pytest

pytest.importorskip("matplotlib", reason="the plot extra draws the reports' plots")
nbformat = pytest.importorskip("nbformat", reason="the dev extra")
nbclient = pytest.importorskip("nbclient", reason="the dev extra")
pytest.importorskip("ipykernel", reason="the dev extra")

# what one displayed report may add to the notebook file
MAX_REPORT_BYTES = 100_000

CELLS = [
    """\
import numpy as np
from nndoctor import diagnose
from nndoctor.nn import SGD, SSE, Dense, Sequential, Sigmoid
from nndoctor.scenarios import CATALOG

X = np.random.default_rng(42).random((10, 8, 8)).transpose(0, 2, 1).reshape(-1, 8)
model = Sequential(Dense(8, 3, init="zeros"), Sigmoid(), Dense(3, 8, init="zeros"), Sigmoid())
# progress=True: the bars are drawn even for a run this short
first = diagnose(model, X, loss=SSE(), optimizer=SGD(lr=0.05), epochs=30, batch_size=8,
                 progress=True)
display(first)""",
    """\
s = next(c for c in CATALOG if c.name == "relu-killed-by-momentum").build(0)
second = diagnose(s.model, s.X, s.Y, loss=s.loss, optimizer=s.optimizer, epochs=s.epochs,
                  batch_size=s.batch_size, shuffle=s.shuffle, trials=False, progress=True)
second""",
]


class _Ids(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "a" and a.get("href", "").startswith("#"):
            self.links.append(a["href"][1:])


@pytest.fixture(scope="module")
def notebook(tmp_path_factory):
    """The notebook, run in a kernel on this Python (a kernel spec of its own, so a system
    Jupyter's python3 is never picked)."""
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / "nndoctor-test"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kernel = {"argv": argv, "display_name": "nndoctor test", "language": "python",
              "env": {"OMP_NUM_THREADS": "1"}}  # fmt: skip
    (spec / "kernel.json").write_text(json.dumps(kernel))
    mp = pytest.MonkeyPatch()
    mp.setenv("JUPYTER_PATH", str(root))
    mp.setenv("JUPYTER_PLATFORM_DIRS", "1")
    try:
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
        client = nbclient.NotebookClient(nb, timeout=300, kernel_name="nndoctor-test",
                                         resources={"metadata": {"path": str(root)}})  # fmt: skip
        client.execute()
    finally:
        mp.undo()
    return nb


def _reports(nb) -> list[dict]:
    return [
        out
        for cell in nb.cells
        for out in cell.outputs
        if out.output_type in ("display_data", "execute_result") and "text/html" in out.data
    ]


def test_two_reports_have_their_own_ids_and_links(notebook):
    views = _reports(notebook)
    assert len(views) == 2
    parsed = []
    for view in views:
        page = _Ids()
        page.feed(view.data["text/html"])
        # every link of a report lands in that report (its plots above, its glossary)
        assert page.links and all(target in page.ids for target in page.links)
        parsed.append(page)
    assert not parsed[0].ids & parsed[1].ids


def test_each_report_adds_at_most_100_kb(notebook):
    for view in _reports(notebook):
        size = len(json.dumps(view, ensure_ascii=False).encode())
        assert size <= MAX_REPORT_BYTES, size
        assert "<img" in view.data["text/html"]  # with its plots
        text = view.data["text/plain"]
        assert text.startswith("<nndoctor Report: ") and "\n" not in text and len(text) < 300


def test_nothing_in_the_notebook_is_a_warning(notebook):
    streams = [out for cell in notebook.cells for out in cell.outputs
               if out.output_type == "stream"]  # fmt: skip
    assert not [out for cell in notebook.cells for out in cell.outputs
                if out.output_type == "error"]  # fmt: skip
    text = "".join(out.text for out in streams)
    assert "Warning" not in text and "IProgress" not in text, text
    # the progress bars were drawn, as text (no ipywidgets here)
    assert "epoch 30/30" in text and "trial runs" in text
