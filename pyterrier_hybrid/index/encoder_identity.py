"""Which model encoded an index's documents: recorded when it is built, checked when queries are encoded for it.

A model of the same dimension but other weights (a merge of the same start, say) would otherwise rank its queries
against the old model's document vectors without complaint. The identity holds what changes a vector: a hash of
the weights (the state dict, whatever the file format or path), the pooling, normalisation, prefixes, max
lengths, the document text mode, the dtype, the backend (torch, openvino, openvino-int8) and an int8 graph's calibration;
the model's name is kept for messages only.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, List, Optional

from ..model.model_dir import weights_hash

if TYPE_CHECKING:
    from ..model import BiEncoder

#: the flag that accepts another model, in the messages
ALLOW = "allow_other_encoder=True"


def encoder_identity(encoder: BiEncoder) -> dict:
    """What an index records about the model that encoded its documents (json-ready).

    Args:
        encoder: the :class:`~pyterrier_hybrid.BiEncoder`.
    """
    return {"model": encoder.name, "weights": weights_hash(encoder.model), **dataclasses.asdict(encoder.settings),
            "doc_text": encoder.doc_text, "dtype": encoder.dtype, "backend": encoder.backend,
            **({"calibration": encoder.calibration_key} if encoder.calibration_key else {})}


def differences(stored: dict, given: dict) -> List[str]:
    """The fields in which two identities differ; the model's name alone is no difference."""
    return sorted(k for k in set(stored) | set(given) if k != "model" and stored.get(k) != given.get(k))


def check_encoder(stored: Optional[dict], encoder: BiEncoder, where: str, allow_other_encoder: bool = False) -> None:
    """Refuse ``encoder`` for an index whose documents another model encoded, unless ``allow_other_encoder``.

    An index that records no identity (format 2, built from vectors or without an encoder) cannot be checked and is
    accepted.

    Args:
        stored: the index's recorded identity, or None.
        encoder: the model about to encode queries for it.
        where: the index's name in the message.
        allow_other_encoder: accept a mismatch (e.g. to compare models on purpose).
    """
    if stored is None or allow_other_encoder:
        return
    stored = {"backend": "torch", **stored}  # recorded before there were other backends
    given = encoder_identity(encoder)
    changed = differences(stored, given)
    if changed:
        detail = "; ".join(f"{k}: {stored.get(k)!r} there, {given.get(k)!r} here" for k in changed)
        raise ValueError(f"{where} holds documents encoded by model {stored.get('model')!r}, but the queries would be "
                         f"encoded by {given['model']!r}, which differs ({detail}). Query it with the model that built "
                         f"it, rebuild the index with this one, or pass {ALLOW} to search it anyway")
