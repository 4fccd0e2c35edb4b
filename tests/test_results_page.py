"""pyterrier_hybrid.studies.results: docs/results.md from run artifacts, on made-up runs whose numbers we know."""
import json

import numpy as np
import pytest

from pyterrier_hybrid.evaluation.report import seen_unseen, seen_unseen_rows
from pyterrier_hybrid.studies import results, runs
from pyterrier_hybrid.studies.combine_page import combine_section
from pyterrier_hybrid.studies.stats import holm, paired_test
from pyterrier_hybrid.studies.tables import signed

LANGS = ["ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh"]


def fake_run(folder, alpha, seed, multi, rd, steps=120):
    """A run whose every Mo./Cr. cell is 0.7 + alpha / 10, Mul. mAP ``multi`` and rank distance ``rd`` everywhere."""
    folder.mkdir(parents=True)
    cell = 0.7 + alpha / 10
    report = {"langs": LANGS, "mAP": {"mono": cell, "cross": cell, "multi": multi},
              "matrix": {x: {y: cell for y in LANGS} for x in LANGS},
              "multi_by_lang": {x: multi + (0.01 * i if x in ("el", "ru") else 0) for i, x in enumerate(LANGS)},
              "rank_distance": {"macro": rd, **{x: rd for x in LANGS}},
              "rank_correlation": {"macro": 0.5, **{x: 0.5 for x in LANGS}}}
    (folder / "report.json").write_text(json.dumps(report))
    log = [{"step": 20, "loss": 1.0, "val_loss": 1.2 - seed / 100}, {"step": 40, "loss": 0.9, "val_loss": 1.1 + seed / 5}]
    (folder / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
    (folder / "training_config.json").write_text(json.dumps({
        "alpha": alpha, "seed": seed, "base_model": "me5", "batch_size": 32, "train": {"steps": steps, "amp": "bf16", "freeze_embeddings": True}}))
    (folder / "README.md").write_text("card")


def test_page_from_runs(tmp_path):
    study = tmp_path / "results" / "alpha"
    for alpha, multi, rd in [(0.0, 0.60, 300.0), (0.5, 0.58, 320.0), (1.0, 0.55, 380.0)]:
        for seed in (0, 1):
            fake_run(study / f"alpha{alpha:g}-seed{seed}", alpha, seed, multi + seed / 100, rd + 10 * seed)
    (study / "reading.md").write_text("Hybrid sits between the two here.")
    text = results.write_page(study, tmp_path / "results.md")
    assert "| 0.5 | 2 | 0.750 ± 0.000 | 0.750 ± 0.000 | 0.585 ± 0.007 | 325.0 ± 7.1 | 40, 20 |" in text
    assert "| 0 | 2 | 0.700 ± 0.000 |" in text and "6 runs" in text
    # α = 0.5 vs 0: its Mo. and Cr. cells are all higher, its Mul. lower in all 11 languages, its rank distance worse;
    # vs 1: Mo. and Cr. lower everywhere, Mul. higher and rank distance better in every language
    for pair, expected in [("0.5 vs 0", ["11 / 0", "110 / 0", "0 / 11", "0 / 11"]),
                           ("0.5 vs 1", ["0 / 11", "0 / 110", "11 / 0", "11 / 0"])]:
        row = next(line for line in text.splitlines() if line.startswith(f"| {pair} |"))
        assert [c.split(",")[0].strip() for c in row.strip("|").split("|")[1:]] == expected
    # seed noise against the gaps: α = 0.5 minus the better pure strategy, and the pooled seed std
    assert "| Mo. mAP | 0.700 | 0.800 | 0.000 | -0.050 |" in text
    assert "| Mul. mAP | 0.605 | 0.555 | 0.007 | -0.020 |" in text
    assert "| rank distance | 305.0 | 385.0 | 7.1 | -20.0 |" in text
    assert "| 1 | unseen | 0.800 | 0.800 |" in text
    assert "No reproduction check committed yet" in text
    assert "Hybrid sits between the two here." in text
    assert (tmp_path / "img" / "alpha-pareto.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "img" / "alpha-languages.png").read_bytes()[:4] == b"\x89PNG"
    spread = next(line for line in text.splitlines() if line.startswith("| 1 | 0."))
    unseen = np.mean([0.555 + (0.01 * LANGS.index(x) if x in ("el", "ru") else 0) for x in ["el", "ru", "th", "tr"]])
    assert f"| {unseen:.3f} |" in spread


def test_holm():
    assert np.allclose(holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]) == [1.0, 1.0]


def test_paired_test():
    assert paired_test([0.5, 0.6, 0.7, 0.5, 0.6, 0.7], [0.4] * 6) == (6, 0, 0.03125)  # 2 / 2**6: all six one way
    assert paired_test([10, 20, 30], [11, 19, 31], better=-1)[:2] == (2, 1)  # lower is better: two pairs favour a
    assert paired_test([1.0, 2.0], [1.0, 2.0]) == (0, 0, 1.0)  # every pair ties: no test


def test_seen_and_unseen_languages_come_from_the_datasets():
    assert runs.SEEN == ["ar", "de", "en", "es", "hi", "vi", "zh"]  # MLQA-R's languages
    assert runs.UNSEEN == ["el", "ru", "th", "tr"]                  # XQuAD-R's others


def test_seen_unseen_parts_and_rows():
    report = fake_report(0.8, 0.6, 0.5, 300.0)
    report["multi_by_lang"]["el"], report["rank_distance"]["el"] = 0.3, 500.0
    parts = seen_unseen(report, seen=["ar", "de"])
    # Cr.: the seen part is the two cells between ar and de; every other cell involves an unseen language
    assert parts["seen"] == {"mono": 0.8, "cross": 0.6, "multi": 0.5, "rank_distance": 300.0}
    assert parts["unseen"]["multi"] == pytest.approx((8 * 0.5 + 0.3) / 9)
    assert parts["unseen"]["rank_distance"] == pytest.approx((8 * 300.0 + 500.0) / 9)
    assert seen_unseen_rows({"hybrid": parts}, "model") == [
        "| model | part | Mo. | Cr. | Mul. | rank distance |", "|---|---|---|---|---|---|",
        "| hybrid | seen | 0.800 | 0.600 | 0.500 | 300.0 |",
        f"| hybrid | unseen | 0.800 | 0.600 | {(8 * 0.5 + 0.3) / 9:.3f} | {(8 * 300.0 + 500.0) / 9:.1f} |"]


def test_reproduction_and_other_studies_on_the_page(tmp_path):
    study = tmp_path / "results" / "alpha"
    for alpha in (0.0, 1.0):
        fake_run(study / f"alpha{alpha:g}-seed0", alpha, 0, 0.6, 300.0)
    fake_run(tmp_path / "results" / "budget" / "alpha0.5-seed0", 0.5, 0, 0.61, 290.0)
    (study / "reproduction.json").write_text(json.dumps({
        "run": "alpha0-seed0", "command": "python -m pyterrier_hybrid.studies.alpha_sweep --reproduce alpha0-seed0",
        "config_identical": True, "log_max_abs_diff": 0.0, "report_max_abs_diff": 0.0, "identical": True}))
    text = results.write_page(study, tmp_path / "results.md")
    assert "## Four times the budget" in text and "| 0.5 | 1 | 0.750 | 0.750 | 0.610 | 290.0 |" in text
    assert "The reverse direction" not in text  # no runs, no section
    assert "over every number of the report: 0 (bit-identical)" in text
    assert "Needs a mixed α" in text


def test_budget_and_reverse_sections(tmp_path, monkeypatch):
    results_dir = tmp_path / "results"
    for alpha, multi, rd in [(0.0, 0.60, 300.0), (0.5, 0.58, 320.0), (1.0, 0.55, 380.0)]:
        for seed in (0, 1):
            fake_run(results_dir / "alpha" / f"alpha{alpha:g}-seed{seed}", alpha, seed, multi + seed / 100, rd + 10 * seed)
    for alpha, multi, rd in [(0.0, 0.62, 290.0), (0.5, 0.63, 300.0), (1.0, 0.56, 370.0)]:
        fake_run(results_dir / "budget" / f"alpha{alpha:g}-seed0", alpha, 0, multi, rd, steps=480)
        fake_run(results_dir / "reverse" / f"alpha{alpha:g}-seed0", alpha, 0, multi - 0.1, rd - 100)
    zero_shot = tmp_path / "mlqa-r-bfloat16.json"
    zero_shot.write_text(json.dumps({"mAP": {"mono": 0.61, "cross": 0.52, "multi": 0.33}, "rank_distance": {"macro": 512.25}}))
    monkeypatch.setattr(results, "ZERO_SHOT", {"xquad-r": tmp_path / "absent.json", "mlqa-r": zero_shot})
    bm25 = tmp_path / "bm25-mlqa-r.json"
    bm25.write_text(json.dumps({"mAP": {"mono": 0.30, "cross": 0.10, "multi": 0.12}, "rank_distance": {"macro": 558.25},
                                "partial_rankings": {"pool": 20534, "mean_ranked": {"macro": 728.2},
                                                     "unranked_relevant_share": {"macro": 0.706}}}))
    monkeypatch.setattr(results, "BM25", {"xquad-r": tmp_path / "absent.json", "mlqa-r": bm25})
    monkeypatch.setattr(results, "REPO", tmp_path)
    text = results.write_page(results_dir / "alpha", tmp_path / "results.md")
    budget = text[text.index("## Four times the budget"):text.index("## The reverse direction")]
    # the 480-step runs minus seed 0's 120-step runs: Mo./Cr. cells depend on α only, so they did not move
    assert "| 0 | +0.000 | +0.000 | +0.020 | -10.0 |" in budget
    assert "| 0.5 | +0.000 | +0.000 | +0.050 | -20.0 |" in budget
    assert "| 1 | +0.000 | +0.000 | +0.010 | -10.0 |" in budget
    # hybrid beyond the better pure strategy: behind X-Y on Mul. at 120 steps, ahead of it at 480
    assert "| 0.5 | 120 steps, seed 0 | -0.050 | -0.050 | -0.020 | -20.0 |" in budget
    assert "| 0.5 | 120 steps, every seed | -0.050 | -0.050 | -0.020 | -20.0 |" in budget
    assert "| 0.5 | 480 steps, kept step | -0.050 | -0.050 | +0.010 | -10.0 |" in budget
    assert "final step" not in budget  # no final-step reports yet
    for alpha, multi in [(0.0, 0.64), (0.5, 0.62), (1.0, 0.57)]:  # now evaluate the final steps
        last = json.loads((results_dir / "budget" / f"alpha{alpha:g}-seed0" / "report.json").read_text())
        last["mAP"]["multi"] = multi
        (results_dir / "budget" / f"alpha{alpha:g}-seed0" / "report-last-step.json").write_text(json.dumps(last))
    text = results.write_page(results_dir / "alpha", tmp_path / "results.md")
    budget = text[text.index("## Four times the budget"):text.index("## The reverse direction")]
    assert "| 0.5 | 0.750 | 0.750 | 0.620 | 300.0 |" in budget
    assert "| 0.5 | 480 steps, final step | -0.050 | -0.050 | -0.020 | -10.0 |" in budget
    # a second seed that only α = 0 has finished is in the table, but not in the comparisons
    fake_run(results_dir / "budget" / "alpha0-seed1", 0.0, 1, 0.90, 100.0, steps=480)
    text = results.write_page(results_dir / "alpha", tmp_path / "results.md")
    budget = text[text.index("## Four times the budget"):text.index("## The reverse direction")]
    assert "| 0 | 2 | 0.700 ± 0.000 | 0.700 ± 0.000 | 0.760 ± 0.198 |" in budget
    assert "Compared below: seed 0, the seeds every α has finished." in budget
    assert "| 0.5 | 480 steps, kept step | -0.050 | -0.050 | +0.010 | -10.0 |" in budget
    reverse = text[text.index("## The reverse direction"):]
    assert "| 0.5 | 1 | 0.750 | 0.750 | 0.530 | 200.0 |" in reverse
    assert "| zero-shot start (`mlqa-r-bfloat16.json`) | – | 0.610 | 0.520 | 0.330 | 512.2 | – |" in reverse
    assert "| paper: XLM-R hybrid | – | .648 | .623 | .512 | 227.1 | – |" in reverse
    # BM25 beside the zero-shot start, its rank distance starred and explained by its partial rankings
    assert "| BM25 (pisa) (`bm25-mlqa-r.json`) | – | 0.300 | 0.100 | 0.120 | 558.2* | – |" in reverse
    assert "728.2 of 20,534 per question on average, and 70.6% of the relevant sentences are not ranked" in reverse
    assert "BM25" not in text[:text.index("## The reverse direction")]  # no XQuAD-R report given
    # once every α has seed 1 at both budgets, the compared seeds are every seed: that row is not repeated
    for alpha in (0.5, 1.0):
        fake_run(results_dir / "budget" / f"alpha{alpha:g}-seed1", alpha, 1, 0.6, 300.0, steps=480)
    budget = results.write_page(results_dir / "alpha", tmp_path / "results.md").split("## Four times the budget")[1]
    assert "| 0.5 | 120 steps, seeds 0, 1 |" in budget and "every seed" not in budget


def test_signed_differences_never_read_minus_zero():
    assert signed(-0.0003, 3) == "+0.000" and signed(-0.0006, 3) == "-0.001"
    assert signed(12.34, 1) == "+12.3" and signed(-0.04, 1) == "+0.0"


def test_budget_lines_with_no_seed_every_alpha_finished():
    budget = {0.0: [{"config": {"seed": 0}}], 0.5: [{"config": {"seed": 1}}]}
    assert results.budget_lines(budget, {}) == ["No seed has finished every α of this study yet, so nothing is compared."]


def fake_report(mono, cross, multi, rd):
    return {"langs": LANGS, "mAP": {"mono": mono, "cross": cross, "multi": multi},
            "matrix": {x: {y: (mono if x == y else cross) for y in LANGS} for x in LANGS},
            "multi_by_lang": {x: multi for x in LANGS}, "rank_distance": {"macro": rd, **{x: rd for x in LANGS}}}


def test_combine_section(tmp_path):
    combine = tmp_path / "results" / "combine"
    values = {"xx": (0.80, 0.66, 0.52, 400.0), "xy": (0.78, 0.69, 0.58, 340.0), "hybrid": (0.79, 0.68, 0.56, 360.0),
              "merge-xx0.5-xy": (0.80, 0.69, 0.57, 350.0)}
    for seed in (0, 1, 2):
        for recipe, (mo, cr, mul, rd) in values.items():
            folder = combine / "xquad-r" / f"{recipe}-seed{seed}"
            folder.mkdir(parents=True)
            (folder / "none.json").write_text(json.dumps(fake_report(mo, cr, mul + seed / 100, rd)))
            (folder / "center.json").write_text(json.dumps(fake_report(mo - 0.005, cr + 0.01, mul + 0.05, rd - 80)))
    (combine / "xquad-r" / "start").mkdir()
    (combine / "xquad-r" / "start" / "none.json").write_text(json.dumps(fake_report(0.80, 0.64, 0.30, 1211.0)))
    (combine / "selection.json").write_text(json.dumps({
        "rule": "highest mean", "selected": "merge-xx0.5-xy+center",
        "scores": {"merge-xx0.5-xy+center": 0.7, "xy+none": 0.65, "hybrid+none": 0.64, "xx+none": 0.6}}))
    (combine / "retrain").mkdir()
    (combine / "retrain" / "alpha1-seed0.json").write_text(json.dumps({
        "run": "alpha1-seed0", "config_identical": True, "log_max_abs_diff": 0.0, "report_max_abs_diff": 2e-6}))
    # the reverse direction, seed 0: the forward choice judged on MLQA-R, where it loses Mo. to X-Y
    for recipe, removal, numbers in [("xy", "none", (0.66, 0.62, 0.50, 230.0)),
                                     ("merge-xx0.5-xy", "center", (0.65, 0.63, 0.53, 210.0))]:
        folder = combine / "reverse" / "mlqa-r" / f"{recipe}-seed0"
        folder.mkdir(parents=True)
        (folder / f"{removal}.json").write_text(json.dumps(fake_report(*numbers)))
    (combine / "reverse" / "retrain").mkdir()
    (combine / "reverse" / "retrain" / "alpha0-seed0.json").write_text(json.dumps({
        "run": "alpha0-seed0", "config_identical": True, "log_max_abs_diff": 0.0, "report_max_abs_diff": 0.0}))
    (combine / "reading.md").write_text("Pick the merge for the least bias.\n")
    committed = tmp_path / "zero-shot.json"  # the committed zero-shot report, 0.5 rank distance away
    committed.write_text(json.dumps(fake_report(0.80, 0.64, 0.30, 1211.5)))
    text = "\n".join(combine_section(combine, tmp_path, {}, zero_shot={"xquad-r": committed}))
    assert "largest absolute difference: macro and per-setting mAP 0, rank distance 0.5" in text
    assert "### Reading: which pipeline to pick\n\nPick the merge for the least bias.\n" in text
    assert ("Selected pipeline on MLQA-R: Mo. 0.650, Cr. 0.630, Mul. 0.530, rank distance 210.0. Against the best "
            "pure strategy on validation, X-Y (α = 0) as encoded (1 seed): Mo. -0.010, Cr. +0.010, Mul. +0.030, "
            "rank distance -20.0; not at least as good on all four.") in text
    assert "| X-X-mono ⊕ X-Y, λ = 0.5 **(selected)** | centring | 1 | 0.650 | 0.630 | 0.530 | 210.0 |" in text
    assert "| alpha0-seed0 | yes | 0 | 0 |" in text
    # the selected pipeline: the merge with centring, Mo. 0.795, Mul. 0.57 + 0.05, rank distance 270
    assert "| X-X-mono ⊕ X-Y, λ = 0.5 **(selected)** | centring | 3 | 0.795 ± 0.000 | 0.700 ± 0.000 | 0.620 ± 0.000 | 270.0 ± 0.0 |" in text
    assert "Mo. 0.795 (target ≥ 0.800: missed by 0.005), Mul. 0.620 (≥ 0.600: met), rank distance 270.0 (≤ 300: met)" in text
    # the reference is X-Y (best pure validation score; its Mul. is 0.59 on average over seeds)
    assert "X-Y (α = 0) as encoded (3 seeds): Mo. +0.015, Cr. +0.010, Mul. +0.030, rank distance -70.0; at least as good on all four" in text
    assert "**Target not reached**." in text
    row = next(line for line in text.splitlines() if line.startswith("| seeds 0, 1, 2 |"))
    assert [c.split(",")[0].strip() for c in row.strip("|").split("|")[1:]] == ["11 / 0", "110 / 0", "11 / 0", "11 / 0"]
    assert "| alpha1-seed0 | yes | 0 | 2e-06 |" in text
    assert (tmp_path / "combine-pareto.png").read_bytes()[:4] == b"\x89PNG"


def test_hardware_lines_group_runs_by_where_they_trained():
    cpu = {"device": "cpu", "cpu": "AMD EPYC", "torch": "2.13.0", "threads": 2, "native_bf16": True}
    gpu = {"device": "NVIDIA H200", "torch": "2.11.0", "threads": 16, "native_bf16": True}
    runs = {0.0: [{"config": {}}, {"config": {"sittings": [{"from_step": 0, **cpu}]}}],
            0.5: [{"config": {"sittings": [{"from_step": 0, **cpu}]}}],
            1.0: [{"config": {"sittings": [{"from_step": 0, **cpu}, {"from_step": 80, **gpu, "native_bf16": False}]}}]}
    timed = lambda seconds: [{"step": i + 1, "loss": 1.0, "seconds": s} for i, s in enumerate(seconds)]  # noqa: E731
    runs[0.0][0]["log"], runs[0.0][1]["log"] = timed([]), timed([3.0] * 100)
    runs[0.5][0]["log"], runs[1.0][0]["log"] = timed([4.0, 6.0, 5.0] * 40), timed([1.0] * 60)
    rows = results.hardware_lines({"budget": runs, "reverse": {}})[4:]
    # the two recorded CPU runs pool their steps: the median of 100 x 3 s and 40 each of 4, 5, 6 s is 4 s; each run
    # costs its steps x its own median: 100 x 3 s = 5 min and 120 x 5 s = 10 min, 7.5 on average
    assert rows == ["| budget | not recorded | 1 | – | – |",
                    "| budget | cpu (AMD EPYC), torch 2.13.0, 2 threads, native bf16 | 2 | 4.00 | 7.5 |",
                    "| budget | from step 0: cpu (AMD EPYC), torch 2.13.0, 2 threads, native bf16; from step 80: "
                    "NVIDIA H200, torch 2.11.0, 16 threads, no native bf16 | 1 | 1.00 | 1.0 |"]


def test_fp32_studies_have_their_own_section_and_baselines(tmp_path):
    results_dir = tmp_path / "results"
    for alpha, multi, rd in [(0.0, 0.60, 300.0), (0.5, 0.58, 320.0), (1.0, 0.55, 380.0)]:
        fake_run(results_dir / "alpha" / f"alpha{alpha:g}-seed0", alpha, 0, multi, rd)
    text = results.write_page(results_dir / "alpha", tmp_path / "results.md")
    assert "fp32" not in text  # no fp32 runs: no section
    # fp32 runs whose numbers differ from the bf16 ones: the budget is compared with the fp32 baselines only
    for alpha, multi, rd in [(0.0, 0.50, 400.0), (0.5, 0.48, 420.0), (1.0, 0.45, 480.0)]:
        fake_run(results_dir / "alpha-fp32" / f"alpha{alpha:g}-seed0", alpha, 0, multi, rd)
        fake_run(results_dir / "budget-fp32" / f"alpha{alpha:g}-seed0", alpha, 0, multi + 0.03, rd - 40, steps=480)
    text = results.write_page(results_dir / "alpha", tmp_path / "results.md")
    fp32 = text[text.index("## In fp32, on hosts without fast bf16"):text.index("## Reproducibility")]
    assert "## fp32: the baselines" in fp32 and "## fp32: four times the budget" in fp32
    assert "| 0.5 | 1 | 0.750 | 0.750 | 0.480 | 420.0 | 40 |" in fp32
    # +0.030 Mul. and -40 rank distance against the fp32 baselines (against the bf16 ones it would read -0.070, +60)
    assert "| 0.5 | +0.000 | +0.000 | +0.030 | -40.0 |" in fp32
    assert "## Four times the budget" not in text  # the bf16 budget study has no runs
    assert "| budget (fp32) | not recorded | 3 |" in text


def test_fp32_study_recipe_and_folders(monkeypatch):
    from pyterrier_hybrid.studies import alpha_sweep
    recipe, todo = alpha_sweep.study("budget", "M", "fp32")
    assert recipe.eval_dtype == "float32" and recipe.steps == 480
    assert {tuple(r.flags) for r in todo} == {("--freeze-embeddings",)}  # no --amp bf16
    assert [r.name for r in alpha_sweep.study("alpha", "M", "fp32")[1]] == [
        f"alpha{a}-seed{s}" for s in (0, 1, 2) for a in ("0", "0.5", "1")]
    assert alpha_sweep.folder("budget", "fp32") == runs.RESULTS / "budget-fp32"
    assert alpha_sweep.folder("budget", "bf16") == runs.RESULTS / "budget"
    bf16_recipe, bf16_runs = alpha_sweep.study("budget", "M")
    assert bf16_recipe.eval_dtype == "bfloat16" and tuple(bf16_runs[0].flags) == alpha_sweep.RECIPE_FLAGS
    for host, expected in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(alpha_sweep, "bf16_host", lambda: host)
        assert alpha_sweep.resolve_precision("auto") == expected
    with pytest.raises(ValueError, match="unknown precision 'fp16'"):
        alpha_sweep.resolve_precision("fp16")
