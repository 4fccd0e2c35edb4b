"""Published numbers this toolkit is compared against, each with its source (docs/references.md lists them too).

The Mo./Cr./Mul. figures are macro mAP over the full ranking, the rank distance is the paper's language-bias measure
(lower is better); see docs/evaluation.md for how ours are computed.
"""
from __future__ import annotations

from typing import Dict, Tuple

#: arXiv 2408.10536 (hybrid batches), its results table: dataset -> model and sampling -> (Mo., Cr., Mul., rank distance)
PAPER: Dict[str, Dict[str, Tuple[float, float, float, float]]] = {
    "xquad-r": {"XLM-R X-X-mono": (0.792, 0.674, 0.547, 410.2), "XLM-R X-Y": (0.755, 0.700, 0.593, 295.4),
                "XLM-R hybrid": (0.798, 0.705, 0.593, 286.6), "LaBSE hybrid": (0.817, 0.767, 0.682, 221.1)},
    "mlqa-r": {"XLM-R X-X-mono": (0.648, 0.584, 0.473, 287.5), "XLM-R X-Y": (0.626, 0.620, 0.508, 226.7),
               "XLM-R hybrid": (0.648, 0.623, 0.512, 227.1), "LaBSE hybrid": (0.686, 0.681, 0.579, 195.0)},
}
