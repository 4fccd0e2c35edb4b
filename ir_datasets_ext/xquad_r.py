"""XQuAD-R: 11-way parallel questions over 240 paragraphs (LAReQA, arXiv 2004.05484)."""
from ._lareqa import LareqaFamily

XQUAD_R = LareqaFamily(
    name="xquad-r",
    md5={
        "ar": "1114954691ce6b8ed452aa2befcd21c2",
        "de": "ca34197b707b08bd4e03db4b3640e863",
        "el": "d4982e87c3eff32830cc4d33a26e63fa",
        "en": "b8c2383f52bc96438cf09a69cdccabdd",
        "es": "e4a69ab74a1f71d64f771f419c6e3eea",
        "hi": "390ee65a0559e65033f4cc44a27617fe",
        "ru": "e6ef8814695fead9f2227d9b44144417",
        "th": "1270594bf229e0fa2082d6508095e0b1",
        "tr": "6ee6aed1a7a5745b2cd31322c7d58c15",
        "vi": "72a138effea0cea9d5f7573553d70809",
        "zh": "2122b7e42e66c2d3cbdbe78d21b1a11c",
    },
    url="https://raw.githubusercontent.com/google-research-datasets/lareqa/"
        "9bc8c7fb6dd8d01d72a05a93c2cb96882b0d299c/xquad-r/{lang}.json",
    license="CC BY-SA 4.0",
)
