"""Paths and parsed configuration of the book, shared by the book tests."""

import re
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
REPOSITORY_URL = CONFIG["repository"]["url"]
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))


def toc_files() -> list[str]:
    files = [TOC["root"]]
    for part in TOC.get("parts", []):
        files += [chapter["file"] for chapter in part["chapters"]]
    return files


def read_notebook(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


# --- Glossary terms in the chapters' prose ------------------------------------------------------

GLOSSARY = ROOT / "book" / "glossary.md"
# Surface forms beyond "term" and "terms" (plurals are added for every term).
EXTRA_FORMS = {
    "precision and recall": ["precision"],
    "TTUR": ["two time-scale update rule"],
    "VAE": ["variational autoencoder", "variational autoencoders"],
    "importance-weighted estimate": ["importance-weighted bound", "importance-weighted"],
    "Jensen–Shannon divergence": ["Jensen-Shannon divergence"],
    "reparameterisation trick": ["reparameterisation"],
    "traversal": ["traversals"],
    "BatchNorm": ["batch normalisation"],
    "posterior collapse": ["collapsed"],
}
_TERM_ROLE = re.compile(r"\{term\}`([^`<]*?)(?:\s*<([^`>]+)>)?`")
_HIDDEN = [  # prose where no term can be linked: code, maths, links, other roles, directives
    re.compile(r"^```.*?^```[ \t]*$", re.S | re.M),
    re.compile(r"\$\$.*?\$\$", re.S),
    re.compile(r"(?<!\\)\$[^$\n]+?\$"),
    re.compile(r"\{(?!term\})[\w:-]+\}`[^`]*`"),
    re.compile(r"(?<!\})`[^`\n]*`"),
    re.compile(r"\[[^\]\n]*\]\([^)\n]*\)"),
    re.compile(r"^#.*$", re.M),
    re.compile(r"^:::.*$|^:[\w-]+:.*$", re.M),
    re.compile(r"<!--.*?-->", re.S),
]


def glossary_terms() -> list[str]:
    """The terms defined in book/glossary.md (lines at the start of a line inside the glossary)."""
    body = GLOSSARY.read_text().split("```{glossary}", 1)[1].split("```", 1)[0]
    return [line.strip() for line in body.splitlines()
            if line.strip() and not line.startswith((" ", ":"))]


def term_forms(term: str) -> list[str]:
    forms = [term, term + "s"] + EXTRA_FORMS.get(term, [])
    return sorted(set(forms), key=len, reverse=True)


def _words(form: str) -> str:
    """A regex for a term's words, which a line break may separate in the prose."""
    return r"\s+".join(re.escape(word) for word in form.split())


def _mask(text: str, spans: list[tuple[int, int]]) -> str:
    chars = list(text)
    for start, end in spans:
        chars[start:end] = " " * (end - start)
    return "".join(chars)


def first_term_uses(markdown: str, terms: list[str]) -> dict[str, tuple[int, int, bool]]:
    """For each glossary term used in ``markdown``, its first use: (start, end, linked).

    A use is a ``{term}`` role naming the term, or any of its surface forms (case-insensitive,
    whole words, a line break counting as a space) in prose outside code, maths, links and headings. Longer terms are found
    first and hide their words from shorter ones ("approximate posterior" is not a use of
    "posterior"). ``linked`` says whether the first use is a ``{term}`` role.
    """
    lowered = {t.lower(): t for t in terms}
    roles = []
    for m in _TERM_ROLE.finditer(markdown):
        target = (m.group(2) or m.group(1)).strip().lower()
        roles.append((m.start(), m.end(), lowered.get(target)))
    text = _mask(markdown, [(s, e) for s, e, _ in roles])
    for pattern in _HIDDEN:
        text = _mask(text, [m.span() for m in pattern.finditer(text)])
    uses = {}
    for term in sorted(terms, key=len, reverse=True):
        spans = []
        for form in term_forms(term):
            flags = 0 if form.isupper() and len(form) <= 5 else re.I
            spans += [m.span() for m in
                      re.finditer(rf"(?<![\w-]){_words(form)}(?![\w-])", text, flags)]
        spans = [s for s in spans if not any(a < s[1] and s[0] < b for a, b in spans
                                             if (a, b) != s and b - a > s[1] - s[0])]
        linked = [(s, e) for s, e, t in roles if t == term]
        candidates = [(s, e, False) for s, e in spans] + [(s, e, True) for s, e in linked]
        if candidates:
            uses[term] = min(candidates)
        text = _mask(text, spans)
    return uses
