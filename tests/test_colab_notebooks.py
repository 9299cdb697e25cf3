"""The Colab edition (_ext/colab_notebooks.py): the chapters' MyST markup becomes CommonMark
that Colab renders, and the code cells stay as they are (fast; no execution)."""

import json
import sys

import pytest

from book_files import NOTEBOOKS, ROOT, read_notebook

sys.path.insert(0, str(ROOT / "_ext"))
import colab_notebooks  # noqa: E402

SITE = "https://example.org/book-site"


@pytest.fixture(scope="module")
def edition(tmp_path_factory):
    out = tmp_path_factory.mktemp("colab")
    paths = colab_notebooks.chapters()
    converter = colab_notebooks.Converter(SITE, {"elbo": "term-ELBO"},
                                          colab_notebooks.figure_numbers(paths))
    setup = colab_notebooks.SETUP.format(repository="https://github.com/o/r", commit="0123abc",
                                         site=SITE + "/")
    return {path.name: colab_notebooks.convert(path, n, converter, setup)
            for n, path in enumerate(paths, start=1)}


def test_the_counter_finds_every_kind_of_myst_construct():
    """Known answer: the counter the next test relies on sees roles, both fence kinds and options."""
    text = ("A {term}`VAE` and {cite:p}`kingma2013auto`.\n\n:::{admonition} Title\n:class: tip\n"
            "body\n:::\n\n```{exercise} Try\n:label: ex-a\n\ntext\n```\n\n```python\nx = 1\n```\n")
    found = colab_notebooks.myst_constructs(text)
    assert sorted(f.split()[0] for f in found) == ["colon", "directive", "option", "option",
                                                   "role", "role"]
    assert colab_notebooks.myst_constructs("Plain **text**, `code`, $x$ and [a link](x.html).") == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_myst_construct_is_left_for_colab_to_show_raw(edition, path):
    before = "\n".join("".join(c.source) for c in read_notebook(path).cells if c.cell_type == "markdown")
    after = "\n".join("".join(c["source"]) for c in edition[path.name]["cells"]
                      if c["cell_type"] == "markdown")
    assert colab_notebooks.myst_constructs(before), f"{path.name} had no MyST to convert"
    assert colab_notebooks.myst_constructs(after) == []
    assert "(glossary.html" not in after and f"]({SITE}/book/glossary.html" in after


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_code_cells_and_their_order_are_the_chapters_but_for_the_setup_cell(edition, path):
    original = [c.source for c in read_notebook(path).cells if c.cell_type == "code"]
    clean = ["".join(c["source"]) for c in edition[path.name]["cells"] if c["cell_type"] == "code"]
    assert clean[1:] == original[1:]
    assert '"vae-utils @ git+https://github.com/o/r@0123abc"' in clean[0]
    assert 'VAE_UTILS_PRETRAINED_URL' in clean[0] and "if IN_COLAB:" in clean[0]


def test_exercises_become_numbered_headings_with_their_solutions_below(edition):
    cells = edition["03_vae.ipynb"]["cells"]
    text = ["".join(c["source"]) for c in cells]
    headings = [t for t in text if t.startswith("#### Exercise 3.")]
    solutions = [t for t in text if t.startswith("#### Solution to exercise 3.")]
    assert [h.split(":")[0] for h in headings] == ["#### Exercise 3.1", "#### Exercise 3.2",
                                                   "#### Exercise 3.3"]
    assert solutions == ["#### Solution to exercise 3.1", "#### Solution to exercise 3.2",
                         "#### Solution to exercise 3.3"]
    admonition = next(t for t in text if t.startswith("> **In this chapter**"))
    assert all(line.startswith(">") for line in admonition.splitlines())
    assert any("[ELBO](" in t and "glossary.html#term-ELBO" in t for t in text)
    assert json.dumps(edition["03_vae.ipynb"])   # a notebook that serialises
