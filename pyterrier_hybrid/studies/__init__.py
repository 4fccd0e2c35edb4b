"""The research studies whose artifacts live in the repository's docs/results/, and the page they make.

``runs`` trains, evaluates and keeps a study's runs; ``alpha_sweep``, ``recipe`` and ``combine`` are the studies,
each runnable as ``python -m pyterrier_hybrid.studies.<name>``; ``results`` writes docs/results.md from the committed
artifacts (``combine_page`` is its merging section; ``tables`` and ``stats`` are what both share). They write into
the checkout they are run from, so run them from a clone installed with ``pip install -e .``.

The top of the package: it may import every other stage, and none imports it.
"""
