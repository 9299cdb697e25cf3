"""The book's configuration agrees with its notebooks (fast; no execution)."""

import re

import pytest

from book_files import (CONFIG, NOTEBOOKS, REPOSITORY_URL, ROOT, first_term_uses, glossary_terms,
                        read_notebook, toc_files)


def test_repository_url_is_configured_once():
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", REPOSITORY_URL)
    assert CONFIG["repository"]["branch"] == "main"
    assert CONFIG["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    others = ["pyproject.toml", "requirements.txt", "_toc.yml", "Makefile", ".ci/run"]
    for name in others:
        assert REPOSITORY_URL not in (ROOT / name).read_text(), f"{name} repeats the repository URL"


def test_the_book_fails_on_notebook_errors():
    assert CONFIG["execute"]["raise_on_error"] is True
    assert CONFIG["execute"]["execute_notebooks"] == "force"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_first_code_cell_installs_vae_utils_from_the_configured_repository_in_colab(path):
    first = next(c for c in read_notebook(path).cells if c.cell_type == "code").source
    assert '"google.colab" in sys.modules' in first
    installs = re.findall(r"%pip install .*\"vae-utils @ git\+(\S+?)\"", first)
    assert installs == [REPOSITORY_URL], f"{path.name} installs from {installs}"
    assert re.search(r"^if IN_COLAB:\n\s+%pip", first, re.M), "install only in Colab"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_are_committed_without_outputs(path):
    for cell in read_notebook(path).cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


def test_every_chapter_is_in_the_table_of_contents_and_exists():
    listed = toc_files()
    for entry in listed:
        assert any((ROOT / f"{entry}{suffix}").exists() for suffix in (".md", ".ipynb")), entry
    for path in NOTEBOOKS:
        assert str(path.relative_to(ROOT).with_suffix("")) in listed, f"{path.name} is not in _toc.yml"


def test_every_environment_the_makefile_creates_is_kept_out_of_the_book():
    """Sphinx would otherwise read the Markdown files inside installed packages."""
    venvs = re.findall(r"^VENV\w* := (\S+)$", (ROOT / "Makefile").read_text(), re.M)
    assert len(venvs) >= 2, venvs
    for venv in venvs:
        assert venv in CONFIG["exclude_patterns"], f"{venv} is not in _config.yml's exclude_patterns"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_every_chapter_has_goals_a_summary_and_three_exercises_with_solutions(notebook):
    """sphinx-exercise: each {exercise} has a label, and a gated solution for that label
    (its code cells run in the build like any other cell, so a broken solution fails it)."""
    import re

    cells = ["".join(c.source) for c in read_notebook(notebook).cells if c.cell_type == "markdown"]
    assert any("admonition} In this chapter" in c and "Reading time" in c for c in cells)
    assert any(c.startswith("## Summary") for c in cells)
    labels = [m for c in cells for m in re.findall(r"```\{exercise\}.*\n:label: (\S+)", c)]
    starts = [m for c in cells for m in re.findall(r"```\{solution-start\} (\S+)", c)]
    ends = sum(c.count("```{solution-end}") for c in cells)
    assert len(labels) >= 3, f"{notebook.name}: {len(labels)} exercises"
    assert starts == labels and ends == len(labels), (labels, starts, ends)


def test_first_term_uses_finds_the_first_use_outside_code_maths_and_longer_terms():
    """Known answers for the glossary check below."""
    terms = ["posterior", "approximate posterior", "nat", "ELBO"]
    text = ("# The posterior\n\nThe `posterior` and $posterior$ are hidden; the approximate "
            "posterior is a longer term. A {term}`nats <nat>` use, then nats again, then the "
            "posterior, then an ELBO and the elbow.")
    uses = first_term_uses(text, terms)
    assert set(uses) == {"posterior", "approximate posterior", "nat", "ELBO"}
    assert text[uses["approximate posterior"][0]:].startswith("approximate")
    assert uses["nat"][2] is True and text[uses["nat"][0]:].startswith("{term}")
    assert uses["posterior"][2] is False and text[uses["posterior"][0]:].startswith("posterior, then")
    assert text[uses["ELBO"][0]:].startswith("ELBO and")
    assert "elbow" not in first_term_uses("an elbow", terms)
    broken = first_term_uses("the approximate\nposterior", terms)   # words across a line break
    assert set(broken) == {"approximate posterior"}


def test_the_glossary_defines_the_terms_the_book_relies_on():
    terms = glossary_terms()
    assert len(terms) >= 40 and len(set(t.lower() for t in terms)) == len(terms)
    for term in ("nat", "logit", "approximate posterior", "ELBO", "VAE", "GAN", "TTUR"):
        assert term in terms


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_every_glossary_term_links_to_the_glossary_at_its_first_use_in_a_chapter(notebook):
    """A reader meets each term first as a link to its definition ({term} role), chapter by
    chapter: an unlinked earlier use added later fails here."""
    prose = "\n\n".join("".join(c.source) for c in read_notebook(notebook).cells
                        if c.cell_type == "markdown")
    uses = first_term_uses(prose, glossary_terms())
    unlinked = {term: prose[max(0, start - 30):end + 10].replace("\n", " ")
                for term, (start, end, linked) in uses.items() if not linked}
    assert uses, f"{notebook.name} uses no glossary term"
    assert not unlinked, f"{notebook.name}: first uses without a {{term}} link: {unlinked}"


def test_every_figure_has_a_named_caption_that_says_what_to_look_at():
    """myst-nb wraps each figure output in a numbered figure (cell metadata mystnb.figure); one
    image per cell, so that each caption belongs to one figure."""
    names = []
    for notebook in NOTEBOOKS:
        for cell in read_notebook(notebook).cells:
            meta = cell.metadata.get("mystnb", {})
            if cell.cell_type != "code" or ("image" not in meta and "figure" not in meta):
                continue
            figure = meta.get("figure", {})
            where = f"{notebook.name}, cell {cell.get('id')}"
            assert "image" in meta and figure.get("name", "").startswith("fig-"), where
            assert len(figure.get("caption", "").split()) >= 8, f"{where}: caption too short"
            assert "".join(cell.source).count("fig = ") + "".join(cell.source).count("fig, ") <= 1, (
                f"{where}: one figure per cell")
            names.append(figure["name"])
    assert len(names) == len(set(names)), "figure names must be unique"
    assert len(names) >= 50


def test_architecture_lists_every_setting_the_package_reads():
    """ARCHITECTURE.md's settings table is settings.SETTINGS, row by row, and no module reads
    os.environ but settings.py."""
    import re

    from vae_utils import settings

    text = (ROOT / "ARCHITECTURE.md").read_text()
    rows = re.findall(r"^\| `(\w+)` \| (.*?) \| (.*?) \| (.*?) \|$", text, re.M)
    assert [tuple(r) for r in rows] == [tuple(s) for s in settings.SETTINGS]
    readers = [p.name for p in (ROOT / "vae_utils").rglob("*.py")
               if "os.environ" in p.read_text() and p.name != "settings.py"]
    assert readers == [], f"modules reading environment variables directly: {readers}"


def test_the_readme_fits_on_a_screen_and_gives_the_two_commands():
    text = (ROOT / "README.md").read_text()
    assert len(text.encode()) <= 5_000
    assert "make book" in text and "make test" in text and "make check" in text
    assert "make test" in (ROOT / ".ci" / "run").read_text()
