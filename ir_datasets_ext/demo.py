"""lareqa-demo: a tiny three-language collection in the LAReQA format, shipped with the package.

Our own text (no dataset sentences): 3 paragraphs per language, 5 parallel questions;
question q5 has no French version, as in MLQA-R where ids exist in only some languages.
It makes examples and tests run with no download.
"""
from pathlib import Path

from ._lareqa import LareqaFamily

DEMO = LareqaFamily(
    name="lareqa-demo",
    md5={
        "en": "bb110be182039f298733cfe81da445d3",
        "de": "b33b3e74214fd6724e918595ff14fc6d",
        "fr": "d14efb95c4c15d7c4e1a424a790ed1f7",
    },
    url=None,
    license="Apache-2.0 (written for this project)",
    data_dir=str(Path(__file__).parent / "demo_data"),
)
