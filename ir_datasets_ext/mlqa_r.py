"""MLQA-R: the MLQA dev split as sentence retrieval; each question exists in 2 to 4 of 7 languages."""
from ._lareqa import LareqaFamily

MLQA_R = LareqaFamily(
    name="mlqa-r",
    md5={
        "ar": "0cabca7da64041a9bcfbfa6397def23e",
        "de": "5fdb66b2614ed2556d05356968eca0b2",
        "en": "9ea5e240816f8a9c668ec49afbf45e7d",
        "es": "1dc80d875f9e37192668eb90bf3e8a2d",
        "hi": "84cee6c9864f8662ef1ef3ed5b96f990",
        "vi": "395e63b077fb8af6735ca9c4337d656c",
        "zh": "b9c78c32a0008dba5f93aea0ac5c2429",
    },
    # removed from the repository's master later; this commit still has the files
    url="https://raw.githubusercontent.com/google-research-datasets/lareqa/"
        "354d67d1cd066854cdfbf5ad0e6105528976141d/mlqa-r/{lang}.json",
    license="CC BY-NC 4.0",
)
