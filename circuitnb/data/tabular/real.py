"""Part III's real tables: data sets that ship inside installed packages, so nothing downloads at run time.

    frame = REAL["penguins"].load()        # raw values of the schema's columns + the binary target, checked
    REAL["penguins"].schema                # every column's type and levels, the target, the source

Five sets; the study (Part III's abstract) names "four tabular benchmarks" without naming them. Three mix
continuous and categorical columns (heart, penguins, affairs), three have ordinal columns (heart, affairs,
anes96), one is all continuous (breast_cancer), each with a binary downstream target:

========== ======================================================= ===== ==================================
name       source                                                  rows  columns
========== ======================================================= ===== ==================================
heart      pingouin.read_dataset('chi2_independence')              296   5 continuous, 6 categorical, 2 ordinal
penguins   pingouin.read_dataset('penguins')                       333   4 continuous, 2 categorical
affairs    statsmodels.datasets.fair.load_pandas()                 6366  2 continuous, 2 categorical, 4 ordinal
anes96     statsmodels.datasets.anes96.load_pandas()               944   2 continuous, 7 ordinal
breast_    sklearn.datasets.load_breast_cancer()                   569   30 continuous
cancer
========== ======================================================= ===== ==================================

Each loader reads the package's own file (pingouin's and statsmodels' CSVs, scikit-learn's bundled CSV); none
fetches anything. Rows are dropped only where the copy marks a value missing (stated in each schema's notes).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pandas as pd

from circuitnb.data.tabular.schema import Column, Schema, check_frame


@dataclass(frozen=True)
class RealSet:
    schema: Schema
    read: Callable[[], pd.DataFrame]        # the raw frame: schema columns + the 0/1 target

    def load(self) -> pd.DataFrame:
        return check_frame(self.read(), self.schema, f"data set {self.schema.name!r}")


def _cont(name: str, note: str) -> Column:
    return Column(name, "continuous", (), note)


def _read_heart() -> pd.DataFrame:
    import pingouin
    df = pingouin.read_dataset("chi2_independence")
    # ca = 4 and thal = 0 are the UCI file's '?' (missing), recoded as numbers in this copy: 7 rows.
    return df[(df["ca"] != 4) & (df["thal"] != 0)]


HEART = Schema(
    "heart",
    (_cont("age", "age, years"), Column("sex", "categorical", (0, 1), "0 = female, 1 = male"),
     Column("cp", "categorical", (0, 1, 2, 3), "chest pain type"),
     _cont("trestbps", "resting blood pressure, mm Hg"), _cont("chol", "serum cholesterol, mg/dl"),
     Column("fbs", "categorical", (0, 1), "fasting blood sugar > 120 mg/dl"),
     Column("restecg", "categorical", (0, 1, 2), "resting electrocardiogram result"),
     _cont("thalach", "maximum heart rate achieved, beats/min"),
     Column("exang", "categorical", (0, 1), "exercise-induced angina"),
     _cont("oldpeak", "ST depression induced by exercise relative to rest, mm"),
     Column("slope", "ordinal", (0, 1, 2), "slope of the peak exercise ST segment, in the copy's coding"),
     Column("ca", "ordinal", (0, 1, 2, 3), "major vessels coloured by fluoroscopy (a count)"),
     Column("thal", "categorical", (1, 2, 3), "thallium stress test result")),
    target="target", source="pingouin.read_dataset('chi2_independence'): UCI Cleveland heart disease "
                            "(Detrano et al. 1989), 303 rows",
    target_note="the copy's 'target' column as shipped (heart disease diagnosis; 1 in 54% of rows)",
    notes="7 rows dropped: ca = 4 (5 rows) and thal = 0 (2 rows) are the UCI file's missing values")


def _read_penguins() -> pd.DataFrame:
    import pingouin
    df = pingouin.read_dataset("penguins").dropna()            # 11 rows lack sex (2 of them every measurement)
    return df.assign(male=(df["sex"] == "male").astype(int))


PENGUINS = Schema(
    "penguins",
    (Column("species", "categorical", ("Adelie", "Chinstrap", "Gentoo"), "penguin species"),
     Column("island", "categorical", ("Biscoe", "Dream", "Torgersen"), "Palmer Archipelago island"),
     _cont("bill_length_mm", "bill length, mm"), _cont("bill_depth_mm", "bill depth, mm"),
     _cont("flipper_length_mm", "flipper length, mm"), _cont("body_mass_g", "body mass, g")),
    target="male", source="pingouin.read_dataset('penguins'): Palmer penguins (Gorman et al. 2014; "
                          "Horst et al. 2020), 344 rows",
    target_note="1 = male, 0 = female", notes="11 rows with a missing value dropped")


def _read_affairs() -> pd.DataFrame:
    from statsmodels.datasets import fair
    df = fair.load_pandas().data
    return df.assign(had_affair=(df["affairs"] > 0).astype(int))


AFFAIRS = Schema(
    "affairs",
    (Column("rate_marriage", "ordinal", (1, 2, 3, 4, 5), "self-rated marriage, 1 very poor .. 5 very good"),
     _cont("age", "age, years (the survey's age bands, recorded as their midpoints)"),
     _cont("yrs_married", "years married (bands, recorded as their midpoints)"),
     Column("children", "ordinal", (0, 1, 2, 3, 4, 5.5), "number of children (5.5 = 5 or more)"),
     Column("religious", "ordinal", (1, 2, 3, 4), "religiousness, 1 not .. 4 strongly"),
     Column("educ", "ordinal", (9, 12, 14, 16, 17, 20), "schooling, years: grade school .. advanced degree"),
     Column("occupation", "categorical", (1, 2, 3, 4, 5, 6), "wife's occupation, 1 student .. 6 professional"),
     Column("occupation_husb", "categorical", (1, 2, 3, 4, 5, 6), "husband's occupation, same coding")),
    target="had_affair", source="statsmodels.datasets.fair.load_pandas(): Fair (1978), Redbook survey of "
                                "married women, 1974, 6366 rows",
    target_note="1 = time spent in extramarital affairs > 0 (32% of rows)", notes="no rows dropped")


def _read_anes96() -> pd.DataFrame:
    from statsmodels.datasets import anes96
    return anes96.load_pandas().data


_LR = (1, 2, 3, 4, 5, 6, 7)
ANES96 = Schema(
    "anes96",
    (_cont("logpopul", "log(population per square mile + 0.1) of the respondent's area"),
     Column("TVnews", "ordinal", tuple(range(8)), "days in the past week the respondent watched TV news"),
     Column("selfLR", "ordinal", _LR, "own left-right placement, 1 extremely liberal .. 7 extremely conservative"),
     Column("ClinLR", "ordinal", _LR, "placement of Clinton, same scale"),
     Column("DoleLR", "ordinal", _LR, "placement of Dole, same scale"),
     Column("PID", "ordinal", tuple(range(7)), "party identification, 0 strong Democrat .. 6 strong Republican"),
     _cont("age", "age, years"),
     Column("educ", "ordinal", _LR, "education, 1 grades 1-8 .. 7 graduate degree"),
     Column("income", "ordinal", tuple(range(1, 25)), "household income bracket, 1 (lowest) .. 24")),
    target="vote", source="statsmodels.datasets.anes96.load_pandas(): American National Election Studies 1996, "
                          "944 rows",
    target_note="1 = voted for Dole, 0 = for Clinton",
    notes="no rows dropped; 'popul' left out (it is logpopul before the log)")


def _read_breast_cancer() -> pd.DataFrame:
    from sklearn.datasets import load_breast_cancer
    b = load_breast_cancer(as_frame=True)                       # reads sklearn/datasets/data/breast_cancer.csv
    return b.frame.assign(malignant=(b.frame["target"] == 0).astype(int))


def _breast_cancer_schema() -> Schema:
    what = ("radius", "texture", "perimeter", "area", "smoothness", "compactness", "concavity", "concave points",
            "symmetry", "fractal dimension")
    feats = [f"mean {w}" for w in what] + [f"{w} error" for w in what] + [f"worst {w}" for w in what]
    return Schema("breast_cancer", tuple(_cont(f, "cell-nucleus measurement from a digitised image") for f in feats),
                  target="malignant", source="sklearn.datasets.load_breast_cancer(): Wisconsin Diagnostic Breast "
                                             "Cancer (Street et al. 1993), 569 rows",
                  target_note="1 = malignant (37%), 0 = benign", notes="no rows dropped")


REAL: dict[str, RealSet] = {
    "heart": RealSet(HEART, _read_heart),
    "penguins": RealSet(PENGUINS, _read_penguins),
    "affairs": RealSet(AFFAIRS, _read_affairs),
    "anes96": RealSet(ANES96, _read_anes96),
    "breast_cancer": RealSet(_breast_cancer_schema(), _read_breast_cancer),
}
