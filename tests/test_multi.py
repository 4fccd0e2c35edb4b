"""Issue 31: multi-positive batches and their loss, mixing batch kinds, the translation-ranking alignment term, and
the passages a step encodes."""
import collections
import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from pyterrier_hybrid.training import TrainConfig, Trainer, from_lareqa, info_nce
from pyterrier_hybrid.training.loss import multi_positive_mask, multi_positive_nce, translation_ranking
from pyterrier_hybrid.training.samplers import (HybridBatchSampler, MixedBatchSampler, MultiPositiveBatchSampler,
                                                make_sampler, parse_mix)
from test_samplers import synthetic
from conftest import DiesAfter, Killed


def lse(values):
    return math.log(sum(math.exp(v) for v in values))


# ---- the losses, by hand -------------------------------------------------------------------------------------------
Q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
D = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [0.8, 0.6], [-1.0, 0.0]])


def test_multi_positive_nce_by_hand():
    t = 0.5
    positives = torch.tensor([[True, True, False, False, False], [False, False, True, True, False]])
    # query 0: answers d0, d1 (logits 2, 1.2); non-answers d2, d3, d4 (0, 1.6, -2)
    negs0 = [0.0, 1.6, -2.0]
    q0 = np.mean([-(2.0 - lse([2.0] + negs0)), -(1.2 - lse([1.2] + negs0))])
    # query 1: answers d2, d3 (2, 1.2); non-answers d0, d1, d4 (0, 1.6, 0); never d3 against d2
    negs1 = [0.0, 1.6, 0.0]
    q1 = np.mean([-(2.0 - lse([2.0] + negs1)), -(1.2 - lse([1.2] + negs1))])
    assert float(multi_positive_nce(Q, D, positives, t)) == pytest.approx((q0 + q1) / 2, rel=1e-6)
    # a masked non-answer (d3 for query 0, d4 for query 1) is no negative
    mask = torch.tensor([[False, False, False, True, False], [False, False, False, False, True]])
    q0m = np.mean([-(2.0 - lse([2.0, 0.0, -2.0])), -(1.2 - lse([1.2, 0.0, -2.0]))])
    q1m = np.mean([-(2.0 - lse([2.0, 0.0, 1.6])), -(1.2 - lse([1.2, 0.0, 1.6]))])
    assert float(multi_positive_nce(Q, D, positives, t, mask)) == pytest.approx((q0m + q1m) / 2, rel=1e-6)


def test_multi_positive_nce_with_one_positive_is_info_nce():
    d = D[:3]
    one = torch.tensor([[True, False, False], [False, True, False]])
    assert float(multi_positive_nce(Q, d, one, 0.5)) == pytest.approx(float(info_nce(Q, d, 0.5)), rel=1e-6)
    mask = torch.tensor([[False, False, True], [False, False, False]])
    assert float(multi_positive_nce(Q, d, one, 0.5, mask)) == pytest.approx(float(info_nce(Q, d, 0.5, mask)), rel=1e-6)


def test_multi_positive_mask():
    pos, mask = multi_positive_mask([["a", "b"], ["c", "a"]], ["a", "b", "c", "a", "x", None, "b"])
    assert pos.int().tolist() == [[1, 1, 0, 0, 0, 0, 0], [0, 0, 1, 1, 0, 0, 0]]
    # copies of a query's own answers elsewhere are false negatives; missing slots are nobody's negatives
    assert mask.int().tolist() == [[0, 0, 0, 1, 0, 1, 1], [1, 0, 0, 0, 0, 1, 0]]


def test_translation_ranking_by_hand():
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([[0.6, 0.8], [0.8, 0.6]])
    # x -> y: row 0 logits (0.6, 0.8), target 0; row 1 (0.8, 0.6), target 1; y -> x: the same numbers (x is identity)
    one_way = np.mean([-(0.6 - lse([0.6, 0.8])), -(0.6 - lse([0.8, 0.6]))])
    assert float(translation_ranking([x, y], 1.0)) == pytest.approx(one_way, rel=1e-6)
    z = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    # pairs (x, y), (x, z), (y, z), each both ways; z's rows are equal, so with z every row sees two equal logits
    xz = (np.mean([-(1 - lse([1, 1])), -(0 - lse([0, 0]))]) + np.mean([-(1 - lse([1, 0])), -(0 - lse([1, 0]))])) / 2
    yz = (np.mean([-(0.6 - lse([0.6, 0.6])), -(0.8 - lse([0.8, 0.8]))])
          + np.mean([-(0.6 - lse([0.6, 0.8])), -(0.8 - lse([0.6, 0.8]))])) / 2
    assert float(translation_ranking([x, y, z], 1.0)) == pytest.approx((one_way + xz + yz) / 3, rel=1e-6)
    # masked: row 0 of y must not be a negative for row 1 (say it is the same text under another id)
    mask_y = torch.tensor([[False, False], [True, False]])
    masked = (np.mean([-(0.6 - lse([0.6, 0.8])), 0.0]) + one_way) / 2
    assert float(translation_ranking([x, y], 1.0, [None, mask_y])) == pytest.approx(masked, rel=1e-6)
    with pytest.raises(ValueError, match="two views or more"):
        translation_ranking([x])


# ---- the samplers --------------------------------------------------------------------------------------------------
def check_multi(batch, source, k):
    items = batch.items
    assert batch.kind == "multi" and batch.positive_langs == k and len(batch.triplets) == k * len(items)
    pids = [t.parallel_id for t in items]
    assert len(pids) == len(set(pids)), "a parallel id twice in one batch"
    for n, item in enumerate(items):
        group = batch.triplets[n * k:(n + 1) * k]
        i = item.parallel_id[len(source.name):]
        langs = [t.doc_lang for t in group]
        assert len(set(langs)) == k and langs[0] == item.query_lang  # K languages, the query's own first
        assert {t.parallel_id for t in group} == {item.parallel_id} and {t.query for t in group} == {f"Q {item.query_lang} {i}"}
        assert all(t.positive == f"P {t.doc_lang} {i}" and t.negative == f"N {t.doc_lang} {i}" for t in group)
    return items


def test_multi_batches_hold_k_languages_per_id_the_query_language_among_them():
    src = synthetic()  # 60 ids in en, de, fr, es; every third lacks es
    for k in (1, 2, 4):
        sampler = MultiPositiveBatchSampler(src, 16, positive_langs=k, seed=k)
        doc_langs, query_langs = collections.Counter(), collections.Counter()
        for batch, _ in zip(sampler, range(200)):
            items = check_multi(batch, src, k)
            assert batch.passages == 2 * k * 16  # K answers and K hard negatives per query
            query_langs.update(t.query_lang for t in items)
            doc_langs.update(t.doc_lang for t in batch.triplets)
            if k == 4:  # ids in three languages are never drawn for K = 4
                assert all(int(t.parallel_id[1:]) % 3 for t in items)
        assert set(query_langs) == {"en", "de", "fr", "es"} and sum(doc_langs.values()) == 200 * 16 * k


def test_multi_needs_k_languages():
    src = synthetic(n=60)
    with pytest.raises(ValueError, match=r"has 0 items in 5 or more languages, too few for a multi batch of 8 \(items "
                                         r"by number of languages: \{3: 20, 4: 40\}\); lower --positive-langs"):
        MultiPositiveBatchSampler(src, 8, positive_langs=5)
    with pytest.raises(ValueError, match="has 40 items in 4 or more languages, too few for a multi batch of 41"):
        MultiPositiveBatchSampler(src, 41, positive_langs=4)
    with pytest.raises(ValueError, match=r"positive_langs \(--positive-langs\) must be at least 1, got 0"):
        MultiPositiveBatchSampler(src, 8, positive_langs=0)
    MultiPositiveBatchSampler(src, 40, positive_langs=4)  # exactly enough


def test_multi_sources_drawn_in_proportion_to_size():
    big, small = synthetic("a", n=90), synthetic("b", n=30)
    names = collections.Counter(b.source for b, _ in zip(MultiPositiveBatchSampler([big, small], 8, 3, seed=4), range(2000)))
    assert abs(names["a"] / 2000 - 0.75) < 0.04


@pytest.mark.parametrize("align", [False, True])
def test_multi_and_mixed_samplers_resume_exactly(align):
    src = synthetic()
    for make in (lambda seed: MultiPositiveBatchSampler(src, 8, 3, seed, align=align, align_queries=align),
                 lambda seed: MixedBatchSampler(src, 8, {"xx": 0.3, "xy": 0.3, "multi": 0.4}, 2, seed, align=align)):
        a = make(5)
        it = iter(a)
        [next(it) for _ in range(7)]
        state = json.loads(json.dumps(a.state_dict()))
        expected = [next(it) for _ in range(6)]
        b = make(99)
        b.load_state_dict(state)
        assert [next(iter(b)) for _ in range(6)] == expected
        assert all(bool(batch.translations) == align for batch in expected)


def test_multi_on_an_irds_source_draws_the_batches_of_the_same_items_in_memory():
    from test_irds_source import BIG, eager

    from pyterrier_hybrid.training import from_irds
    lazy = from_irds(BIG, ["en", "de", "fr"])
    a = MultiPositiveBatchSampler(lazy, 8, 3, seed=3, align=True)
    b = MultiPositiveBatchSampler(eager(lazy), 8, 3, seed=3, align=True)
    first = [next(iter(a)) for _ in range(5)]
    assert first == [next(iter(b)) for _ in range(5)]
    assert all(len(batch.triplets) == 24 and len({t.parallel_id for t in batch.items}) == 8 for batch in first)
    assert all(int(t.parallel_id[1:]) < 50 for batch in first for t in batch.items)  # q50..q59 are in en only


def test_mix_probabilities_are_honoured():
    mix = {"xx": 0.35, "xy": 0.35, "multi": 0.3}
    kinds = collections.Counter(b.kind for b, _ in zip(MixedBatchSampler(synthetic(), 8, mix, 3, seed=1), range(3000)))
    assert set(kinds) == set(mix) and all(abs(kinds[k] / 3000 - p) < 0.03 for k, p in mix.items())
    only = collections.Counter(b.kind for b, _ in zip(MixedBatchSampler(synthetic(), 8, {"xy": 0.2, "multi": 0.8}),
                                                     range(500)))
    assert set(only) == {"xy", "multi"} and abs(only["multi"] / 500 - 0.8) < 0.06


def test_hybrid_is_the_mix_of_xx_and_xy():
    src = synthetic()
    for alpha in (0.0, 0.3, 1.0):
        hybrid = [b for b, _ in zip(HybridBatchSampler(src, 8, alpha, seed=2), range(40))]
        mixed = [b for b, _ in zip(MixedBatchSampler(src, 8, {"xy": 1 - alpha, "xx": alpha}, seed=2), range(40))]
        assert hybrid == mixed


def test_parse_mix_and_bad_mixes():
    assert parse_mix("xx=0.35, xy=0.35,multi=0.3") == {"xx": 0.35, "xy": 0.35, "multi": 0.3}
    for spec, message in [("xx=0.5,xy", r"'xy' is not kind=probability"), ("xx=half", "'xx=half' is not kind=probability"),
                          ("xx=0.5,hybrid=0.5", "unknown batch kind 'hybrid'; use xx, xy, multi"),
                          ("xx=0.5,xx=0.5", "xx is given twice")]:
        with pytest.raises(ValueError, match=message):
            parse_mix(spec)
    src = synthetic()
    with pytest.raises(ValueError, match=r"negative probabilities \{'xy': -0.5\}"):
        MixedBatchSampler(src, 8, {"xx": 1.5, "xy": -0.5})
    with pytest.raises(ValueError, match="sum to 0.9; make them sum to 1"):
        MixedBatchSampler(src, 8, {"xx": 0.5, "multi": 0.4})
    with pytest.raises(ValueError, match="goes with sampling 'mix' and only with it"):
        make_sampler("hybrid", src, 8, mix={"xx": 1.0})


def test_align_draws_another_language_and_nothing_without_it():
    src = synthetic()
    plain = HybridBatchSampler(src, 8, seed=3)
    aligned = HybridBatchSampler(src, 8, seed=3, align=True, align_queries=True)
    a, b = next(iter(plain)), next(iter(aligned))
    assert a.translations == () and b.triplets == a.triplets  # the batch itself is drawn as without alignment
    for t, tr in zip(b.triplets, b.translations):
        i = t.parallel_id[1:]
        assert tr.passage_lang != t.doc_lang and tr.passage == f"P {tr.passage_lang} {i}"
        assert tr.query_lang != t.query_lang and tr.query == f"Q {tr.query_lang} {i}"
    assert b.passages == 8 * 3
    multi = next(iter(MultiPositiveBatchSampler(src, 8, 2, seed=3, align=True)))
    assert all(tr.passage is None for tr in multi.translations)  # its own K passages are the translations
    with pytest.raises(ValueError, match="align_queries needs align=True"):
        HybridBatchSampler(src, 8, align_queries=True)


# ---- the trainer ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo():
    return from_lareqa("lareqa-demo")


def trainer(model, sampler, out, **config):
    torch.manual_seed(0)
    return Trainer(str(model), sampler, out, TrainConfig(**{"steps": 6, "lr": 5e-4, "checkpoint_every": 3, **config}),
                   verbose=False)


def test_the_trainer_computes_the_multi_loss_and_the_align_term(tiny_model_no_dropout, demo, tmp_path):
    batch = next(iter(MultiPositiveBatchSampler(demo, 4, 3, seed=1, align=True, align_queries=True)))
    t = trainer(tiny_model_no_dropout, MultiPositiveBatchSampler(demo, 4, 3, align=True, align_queries=True),
                tmp_path / "m", align_weight=0.5, align_queries=True)
    got = t._accumulate(batch)
    with torch.no_grad():
        enc = t.encoder
        q = enc.embed([x.query for x in batch.items], "query")
        p = enc.embed([x.positive for x in batch.triplets], "doc")
        n = enc.embed([x.negative or "" for x in batch.triplets], "doc")
        q2 = enc.embed([tr.query for tr in batch.translations], "query")
    positives = torch.zeros(4, 24, dtype=torch.bool)
    for i in range(4):
        positives[i, 3 * i:3 * i + 3] = True  # query i's answers are passages 3i..3i+2
    docs = [x.positive for x in batch.triplets] + [x.negative for x in batch.triplets]
    mask = torch.tensor([[d is None or (not positives[i, j] and d in docs[3 * i:3 * i + 3]) for j, d in enumerate(docs)]
                         for i in range(4)])
    expected = (multi_positive_nce(q, torch.cat([p, n]), positives, 0.05, mask)
                + 0.5 * translation_ranking([p[0::3], p[1::3], p[2::3]], 0.05)
                + 0.5 * translation_ranking([q, q2], 0.05))
    assert got == pytest.approx(float(expected), rel=1e-5)


def test_hybrid_loss_is_info_nce_exactly_as_before(tiny_model_no_dropout, demo, tmp_path):
    from pyterrier_hybrid.training import negative_mask
    batch = next(iter(HybridBatchSampler(demo, 4, seed=3)))
    t = trainer(tiny_model_no_dropout, HybridBatchSampler(demo, 4), tmp_path / "h")
    got = t._accumulate(batch)
    with torch.no_grad():
        positives = [x.positive for x in batch.triplets]
        docs = positives + [x.negative for x in batch.triplets]
        q = t.encoder.embed([x.query for x in batch.triplets], "query")
        d = torch.cat([t.encoder.embed(positives, "doc"), t.encoder.embed([x or "" for x in docs[4:]], "doc")])
    assert got == float(info_nce(q, d, 0.05, negative_mask(positives, docs)))  # bit for bit


def grads(t, batch):
    t.optimizer.zero_grad()
    loss = t._accumulate(batch)
    return loss, {n: p.grad.clone() for n, p in t.model.named_parameters() if p.grad is not None}


def test_grad_cache_equals_plain_backprop_for_multi_and_align(tiny_model_no_dropout, demo, tmp_path):
    def sampler():
        return MixedBatchSampler(demo, 4, {"xy": 0.5, "multi": 0.5}, 2, seed=0, align=True, align_queries=True)
    batches = [b for b, _ in zip(sampler(), range(4))]
    assert {b.kind for b in batches} == {"xy", "multi"}
    for batch in batches:
        plain_loss, plain = grads(trainer(tiny_model_no_dropout, sampler(), tmp_path / "a", align_weight=0.5,
                                          align_queries=True), batch)
        cached_loss, cached = grads(trainer(tiny_model_no_dropout, sampler(), tmp_path / "b", align_weight=0.5,
                                            align_queries=True, grad_cache_chunk=3), batch)
        assert cached_loss == pytest.approx(plain_loss, rel=1e-6)
        for name in plain:
            torch.testing.assert_close(cached[name], plain[name], rtol=1e-4, atol=1e-5)  # summation order only


def test_multi_and_align_resume_after_kill_exactly(tiny_model_dir, demo, tmp_path):
    def run(out):
        sampler = MixedBatchSampler(demo, 4, {"xx": 0.4, "multi": 0.6}, 2, seed=1, align=True)
        return trainer(tiny_model_dir, sampler, tmp_path / out, steps=8, align_weight=0.5)
    run("whole").train()
    dying = run("killed")
    dying.sampler = DiesAfter(dying.sampler, 5)
    with pytest.raises(Killed):
        dying.train()
    run("killed").train(resume=True)
    logs = [[json.loads(line) for line in (tmp_path / d / "train_log.jsonl").read_text().splitlines()]
            for d in ("whole", "killed")]
    assert [{k: v for k, v in r.items() if k not in ("seconds", "loss")} for r in logs[0]] == \
           [{k: v for k, v in r.items() if k not in ("seconds", "loss")} for r in logs[1]]
    np.testing.assert_allclose([r["loss"] for r in logs[0]], [r["loss"] for r in logs[1]], rtol=1e-5)
    assert {r["kind"] for r in logs[0]} == {"xx", "multi"}
    a, b = (load_file(tmp_path / d / "model.safetensors") for d in ("whole", "killed"))
    for name in a:
        torch.testing.assert_close(a[name], b[name])


def test_run_config_names_the_new_options_only_when_used(tiny_model_dir, demo, tmp_path):
    plain = trainer(tiny_model_dir, HybridBatchSampler(demo, 4), tmp_path / "a").run_config()
    assert "align_weight" not in plain["train"] and "align" not in plain and "positive_langs" not in plain
    assert list(plain["train"]) == ["steps", "lr", "weight_decay", "warmup_ratio", "temperature", "max_grad_norm",
                                    "grad_cache_chunk", "amp", "freeze_embeddings", "checkpoint_every", "eval_every",
                                    "patience"]
    run = trainer(tiny_model_dir, MultiPositiveBatchSampler(demo, 4, 3, align=True), tmp_path / "b",
                  align_weight=0.25).run_config()
    assert (run["sampling"], run["positive_langs"], run["align"], run["train"]["align_weight"]) == \
           ("multi", 3, {"passages": True, "queries": False}, 0.25)
    with pytest.raises(ValueError, match="align_weight=0.25, align_queries=False: build the sampler with"):
        trainer(tiny_model_dir, HybridBatchSampler(demo, 4), tmp_path / "c", align_weight=0.25)
    with pytest.raises(ValueError, match=r"align_weight \(--align-weight\) must be 0 or more, got -1"):
        trainer(tiny_model_dir, HybridBatchSampler(demo, 4, align=True), tmp_path / "c", align_weight=-1)


def test_cli_trains_multi_with_alignment_and_the_loss_goes_down(tiny_model_dir, tmp_path, capsys):
    from pyterrier_hybrid.cli import main
    out = tmp_path / "m"
    main(["train", "--sampling", "multi", "--positive-langs", "2", "--align-weight", "0.5", "--model",
          str(tiny_model_dir), "--data", "lareqa-demo", "--out", str(out), "--steps", "40", "--batch-size", "4",
          "--lr", "1e-3", "--seed", "7"])
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 41)) and {r["kind"] for r in log} == {"multi"}
    assert {r["passages"] for r in log} == {16}  # 4 queries x 2 answers x (answer + hard negative)
    assert np.mean([r["loss"] for r in log[-10:]]) < 0.9 * np.mean([r["loss"] for r in log[:10]])
    config = json.loads((out / "training_config.json").read_text())
    assert (config["sampling"], config["positive_langs"], config["train"]["align_weight"]) == ("multi", 2, 0.5)
    assert "multi-positive (K = 2)" in (out / "README.md").read_text()
    for args, message in [(["--mix", "xx=0.5,xy=0.6"], "sum to 1.1; make them sum to 1"),
                          (["--sampling", "xx", "--mix", "xx=1"], "leave out --sampling xx"),
                          (["--sampling", "multi", "--align-weight", "-0.5"], "--align-weight must be 0 or more"),
                          (["--sampling", "multi", "--align-queries"], "give --align-weight above 0 too"),
                          ([], "give --sampling"),
                          (["--sampling", "multi", "--positive-langs", "4"], "0 items in 4 or more languages")]:
        with pytest.raises(SystemExit):
            main(["train", *args, "--model", str(tiny_model_dir), "--data", "lareqa-demo", "--out",
                  str(tmp_path / "x"), "--steps", "1", "--batch-size", "4"])
        assert message in capsys.readouterr().err
