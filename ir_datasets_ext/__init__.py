"""ir_datasets entries for the LAReQA evaluation sets, XQuAD-R and MLQA-R.

Importing this package registers ``xquad-r``, ``xquad-r/<x>``, ``xquad-r/<x>/<y>`` and the
same for ``mlqa-r`` and the bundled ``lareqa-demo``. PyTerrier imports it on ``import pyterrier`` (``pyterrier.modules``
entry point), so ``pt.get_dataset('irds:xquad-r/de/en')`` works with no extra import.
"""
from ._lareqa import (
    DATA_ENV,
    LareqaDataError,
    LareqaDoc,
    LareqaFamily,
    LareqaQuery,
    dataset_names,
    id_lang,
    paragraph_id,
    parallel_id,
    parse_squad_sentences,
    register,
)
from .demo import DEMO
from .mlqa_r import MLQA_R
from .xquad_r import XQUAD_R

#: the one registry of LAReQA families, by ir_datasets name
FAMILIES = {f.name: f for f in (XQUAD_R, MLQA_R, DEMO)}

for _family in FAMILIES.values():
    register(_family)


def family(name: str) -> LareqaFamily:
    """The registered family called ``name``, or an error listing the registered ones."""
    if name not in FAMILIES:
        raise ValueError(f"unknown LAReQA family {name!r}; use one of {sorted(FAMILIES)}")
    return FAMILIES[name]


def irds_name(name: str) -> str:
    """An ir_datasets name from a PyTerrier one: ``"irds:miracl/sw"`` and ``"miracl/sw"`` are both ``"miracl/sw"``."""
    return name[len("irds:"):] if name.startswith("irds:") else name


__all__ = [
    "DATA_ENV", "DEMO", "FAMILIES", "MLQA_R", "XQUAD_R", "LareqaDataError", "LareqaDoc", "LareqaFamily",
    "LareqaQuery", "dataset_names", "family", "id_lang", "irds_name", "paragraph_id", "parallel_id", "parse_squad_sentences", "register",
]
