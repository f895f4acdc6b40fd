"""The words stay honest and short: guides quote only recorded figures, and stay readable.

Three checks on README.md and the user guides ``docs/*.md`` (``docs/_incoming/`` is a
staging folder the integrator folds in later, so it is not a guide):

1. **Every figure a guide quotes is in a benchmark record** (``benchmarks/*.md``). A *figure*
   is a measured-looking number in prose:

   - a number with a decimal point: ``0.952``, ``47.4``;
   - a number followed by ``%`` or by a ratio sign ``×`` that is not part of a size
     (``7.3×`` and ``397×`` are figures, ``128×128`` is not);
   - a number followed by a unit of time, frequency, level or size (``12 s``, ``3.1 kHz``,
     ``170 MB``; see ``UNITS``).

   Bare integers (counts of animals, files, epochs) are not figures: they describe a set-up.
   Not prose, so never figures: fenced code blocks and inline code spans (commands, option
   values and defaults, version pins are written as code), link targets, and dotted
   version-like numbers with two or more dots (``0.5.12``). A guide's figure with a unit must
   appear with the same unit in a record (``12 s`` is not matched by ``12 ms``); a bare decimal
   must appear as a number anywhere in a record, tables and code blocks included.
2. README.md has at most 200 lines, each guide at most 300.
3. Every relative link in README.md, the guides and the records resolves to an existing file
   inside the repository (a user's clone has no ``../shared``).
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
GUIDES = sorted((ROOT / "docs").glob("*.md"))  # not recursive: docs/_incoming/ is staging
RECORDS = sorted((ROOT / "benchmarks").glob("*.md"))

README_MAX_LINES = 200
GUIDE_MAX_LINES = 300

#: units after which a number is a figure (longest first, so "ms" wins over "s").
UNITS = ("GFLOP/s", "sweeps/s", "rows/s", "images/s", "syll/s", "µs", "ms", "s", "min", "h",
         "kHz", "Hz", "dB", "KB", "MB", "GB", "TB", "KiB", "MiB", "GiB", "nats")
_NUMBER = r"(?<![\w.])(\d+(?:\.\d+)?)"
_UNIT_RE = re.compile(_NUMBER + r"\s?(" + "|".join(re.escape(u) for u in UNITS) + r")(?![\w/])")
_PERCENT_RE = re.compile(_NUMBER + r"\s?%")
_RATIO_RE = re.compile(_NUMBER + r"\s?×(?!\s?\d)")
_DECIMAL_RE = re.compile(r"(?<![\w.])(\d+\.\d+)(?![\w.]*\.\d)")
_VERSION_RE = re.compile(r"(?<![\w.])\d+(?:\.\d+){2,}")
_ANY_NUMBER_RE = re.compile(r"\d+(?:\.\d+)?")
_FENCE_RE = re.compile(r"^[ \t]*```.*?^[ \t]*```[^\n]*$", re.S | re.M)
_CODE_SPAN_RE = re.compile(r"`[^`\n]*`")
_LINK_TARGET_RE = re.compile(r"\]\(([^)\s]*)(?:\s+\"[^\"]*\")?\)")
_IDENTIFIER_RE = re.compile(r"\b(?:doi|arXiv):\S+|https?://\S+")


def _normalise(text: str) -> str:
    """Thousands separators and thin spaces out, so "1,320" and "1320" are the same figure."""
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)
    return text.replace("\u2009", " ").replace("\u202f", " ").replace("\xa0", " ")


def prose(markdown: str, *, keep_code: bool = False) -> str:
    """The text a figure can be quoted in: no code (unless kept), link targets or identifiers."""
    text = markdown
    if not keep_code:
        text = _CODE_SPAN_RE.sub(" ", _FENCE_RE.sub(" ", text))
    text = _LINK_TARGET_RE.sub("] ", text)
    text = _IDENTIFIER_RE.sub(" ", text)
    return _normalise(_VERSION_RE.sub(" ", text))


def figures(markdown: str, *, keep_code: bool = False) -> set[str]:
    """Every figure quoted in ``markdown`` (see the module docstring); records keep their code."""
    text = prose(markdown, keep_code=keep_code).replace("`", " ")
    found = {f"{num} {unit}" for num, unit in _UNIT_RE.findall(text)}
    found |= {f"{num}%" for num in _PERCENT_RE.findall(text)}
    found |= {f"{num}×" for num in _RATIO_RE.findall(text)}
    return found | set(_DECIMAL_RE.findall(text))


def unrecorded(guide_text: str, records_text: str) -> list[str]:
    """The figures of a guide that no record holds, sorted."""
    with_units = figures(records_text, keep_code=True)
    numbers = set(_ANY_NUMBER_RE.findall(_normalise(records_text)))
    return sorted(fig for fig in figures(guide_text)
                  if fig not in with_units and not (fig.replace(".", "").isdigit() and fig in numbers))


def _records_text() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in RECORDS)


# --- the checker itself: it finds what it should, and only that ------------------------

def test_a_planted_unrecorded_figure_is_reported_and_a_recorded_one_is_not():
    records = "| demo | 47.4 s | p = 0.0022 | 10.8× | 87 % |\n```\nrun --lr 2e-3  # R² 0.26\n```"
    guide = "The demo takes 47.4 s, finds p = 0.0022, 10.8× faster, 87 % and R² 0.26; also 3.14159 and 19 %."
    assert unrecorded(guide, records) == ["19%", "3.14159"]


def test_code_versions_counts_and_sizes_are_not_figures():
    text = ("Python `3.10`, torch 2.13.0 and umap-learn 0.5.12; `--lr 0.001`; 128×128 images of "
            "6 animals; [guide](docs/vae.md#v1.5)\n```bash\nusvpipe train --epochs 4.5\n```")
    assert figures(text) == set()


def test_a_figure_with_a_unit_needs_the_same_unit_in_a_record():
    assert unrecorded("took 12 s", "took 12 ms") == ["12 s"]
    assert unrecorded("took 12 s", "took 12s") == []
    assert unrecorded("1,320 sweeps/s", "1320 sweeps/s") == []


# --- the documents ------------------------------------------------------------------------

@pytest.mark.parametrize("doc", [README, *GUIDES], ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_figure_in_readme_and_guides_is_in_a_benchmark_record(doc):
    assert RECORDS, "benchmarks/ has no records"
    missing = unrecorded(doc.read_text(encoding="utf-8"), _records_text())
    assert not missing, (f"{doc.relative_to(ROOT)} quotes figures that no benchmarks/*.md record holds: "
                         f"{missing} (fix: add the measurement to its record, or quote the record's figure)")


def test_readme_is_at_most_200_lines():
    n = len(README.read_text(encoding="utf-8").splitlines())
    assert n <= README_MAX_LINES, f"README.md has {n} lines (fix: move detail into docs/ or benchmarks/)"


@pytest.mark.parametrize("guide", GUIDES, ids=lambda p: p.name)
def test_each_guide_is_at_most_300_lines(guide):
    n = len(guide.read_text(encoding="utf-8").splitlines())
    assert n <= GUIDE_MAX_LINES, f"{guide.relative_to(ROOT)} has {n} lines (fix: move measurements to benchmarks/)"


def _relative_links(path: Path) -> list[str]:
    text = _CODE_SPAN_RE.sub(" ", _FENCE_RE.sub(" ", path.read_text(encoding="utf-8")))
    targets = [t.split("#")[0] for t in _LINK_TARGET_RE.findall(text)]
    return [t for t in targets if t and not re.match(r"^[a-z][a-z0-9+.-]*:", t)]


@pytest.mark.parametrize("doc", [README, *GUIDES, *RECORDS], ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve_to_files_in_the_repository(doc):
    broken = []
    for target in _relative_links(doc):
        resolved = (doc.parent / target).resolve()
        if not resolved.is_relative_to(ROOT) or not resolved.exists():
            broken.append(target)
    assert not broken, f"{doc.relative_to(ROOT)}: links that do not resolve inside the repository: {broken}"


def test_the_benchmark_index_links_its_records():
    listed = _relative_links(ROOT / "benchmarks" / "README.md")
    assert len(listed) >= 10, "benchmarks/README.md should link every record"


def test_readme_gives_the_two_commands_that_ci_and_the_demo_run():
    readme = README.read_text(encoding="utf-8")
    for command, script in (("bash scripts/demo.sh", "scripts/demo.sh"), ("bash scripts/test.sh", "scripts/test.sh")):
        assert command in readme, f"README.md lost `{command}` (fix: keep the two commands of its first section)"
        assert (ROOT / script).is_file(), script
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text(encoding="utf-8"), \
        ".ci/run no longer runs the README's test command"
