"""The paper's numbers live in circuitnb/measures/paper only: no code or chapter types one (STYLE.md §2 and §8).

A paper number is a value of claims.csv (paper_value, paper_sd, numbers in its notes) or audit.csv written
with a decimal point and at least 3 significant digits ("1.084", "0.116", "4.16"): shorter ones ("0.80",
"100") occur by chance too often to mean anything.

Part II's claims_vae.csv (the VAE paper's abstract) has six numbers, three of them "0.0" and two digits
("0.084"); its paper values with at least 2 significant digits count. They are looked for in the book and
in every Part II module (a name with "vae" or "shapes"): package-wide, "3.43" already occurs as one of
Part I's own measurements (analysis/replicates.py), by chance.
"""
import re
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "circuitnb" / "measures" / "paper"      # the paper's numbers: package data
NUMBER = re.compile(r"\d*\.\d+")


def _significant(text: str) -> int:
    return len(text.replace(".", "").lstrip("0"))


def paper_numbers() -> set[str]:
    claims = pd.read_csv(DATA / "claims.csv", dtype=str).fillna("")
    audit = pd.read_csv(DATA / "audit.csv", dtype=str).fillna("")
    texts = [*claims.paper_value, *claims.paper_sd, *audit.value]
    texts += [m for note in claims.note for m in NUMBER.findall(note)]
    return {t for t in texts if "." in t and "e" not in t.lower() and _significant(t) >= 3}


def vae_numbers() -> set[str]:
    vae = pd.read_csv(DATA / "claims_vae.csv", dtype=str).fillna("")
    return {t for t in [*vae.paper_value, *vae.paper_sd] if "." in t and "e" not in t.lower() and _significant(t) >= 2}


def pattern(numbers) -> re.Pattern:
    """A number standing alone: no digit or '.' before it, no digit after (so 1.084 is not found in 11.0845)."""
    alternatives = "|".join(re.escape(n) for n in sorted(numbers, key=len, reverse=True))
    return re.compile(rf"(?<![\d.])({alternatives})(?!\d)")


def hits(files, numbers=None) -> list[str]:
    pat = pattern(paper_numbers() if numbers is None else numbers)
    return [f"{path.relative_to(ROOT)}:{i}: {m.group(1)}"
            for path in files for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
            for m in pat.finditer(line)]


def _files(top: str, suffixes: tuple[str, ...], skip: tuple[str, ...] = ()) -> list[Path]:
    base = ROOT / top
    return sorted(p for p in base.rglob("*") if p.suffix in suffixes and p.is_file()
                  and not {*p.relative_to(base).parts[:-1]} & {*skip, "_build", ".ipynb_checkpoints"})


def test_the_number_list_and_pattern():
    numbers = paper_numbers()
    assert {"1.084", "0.116", "4.16", "1.538", "128.3", "0.0304"} <= numbers       # claims, audit and notes
    assert not {"0.022", "0.80", "100", "5.5e-6"} & numbers                          # too short, or no point
    pat = pattern(numbers)
    found = lambda line: [m.group(1) for m in pat.finditer(line)]                     # noqa: E731
    assert found("ratio 1.084 at t = 100") == ["1.084"]
    assert found("(0.109-0.120)") == ["0.109", "0.120"] and found("0.166→0.029") == ["0.166"]
    assert found("11.084, 1.0845, 0.1166, v=.116") == []
    assert found("2.67M parameters") == ["2.67"]                                     # a letter may follow


def test_no_paper_numbers_in_the_book():
    files = _files("book", (".ipynb", ".md"), skip=("vendor",))
    assert any(p.suffix == ".ipynb" for p in files)
    found = hits(files)
    assert not found, "paper numbers typed in the book (glue them or leave them to the tables):\n" + "\n".join(found)


def test_no_paper_numbers_in_the_package():
    files = _files("circuitnb", (".py", ".js"))
    assert any(p.name == "scorecard.py" for p in files)
    found = hits(files)
    assert not found, ("paper numbers typed in the package (read them from circuitnb/measures/paper):\n"
                       + "\n".join(found))


def test_no_vae_paper_numbers_in_part_two():
    assert vae_numbers() == {"0.084", "0.064", "0.051", "4.59", "3.99", "3.43"}
    files = _files("book", (".ipynb", ".md"), skip=("vendor",)) + [
        p for p in _files("circuitnb", (".py", ".js")) if "vae" in p.parts or "vae" in p.name or "shapes" in p.name]
    assert any(p.as_posix().endswith("chapters/vae/measures.py") for p in files)
    assert any(p.name.startswith("22_") for p in files)
    found = hits(files, vae_numbers())
    assert not found, "VAE paper numbers typed in (read them from claims_vae.csv):\n" + "\n".join(found)
