import hashlib
import http.server
import shutil
import subprocess
import sys
import threading
from functools import partial

import ir_datasets
import pytest

import ir_datasets_ext
from ir_datasets_ext import LareqaDataError, LareqaFamily, register
from conftest import DEMO_FILES
from ir_datasets_ext import DEMO

ANSWERS = {
    "en": {"q1": "en:0-0", "q2": "en:0-1", "q3": "en:1-1", "q4": "en:2-1", "q5": "en:2-3"},
    "de": {"q1": "de:0-0", "q2": "de:0-1", "q3": "de:1-1", "q4": "de:2-1", "q5": "de:2-2"},
    "fr": {"q1": "fr:0-0", "q2": "fr:0-1", "q3": "fr:1-1", "q4": "fr:2-1"},
}
N_DOCS = {"en": 9, "de": 8, "fr": 7}


def qrels(name):
    return {(q.query_id, q.doc_id) for q in ir_datasets.load(name).qrels_iter()}


def test_names_registered():
    names = ir_datasets_ext.dataset_names(DEMO)
    assert len(names) == 1 + 3 + 9
    assert all(n in ir_datasets.registry for n in names)


def test_monolingual_setting():
    ds = ir_datasets.load("lareqa-demo/de/de")
    docs = list(ds.docs_iter())
    assert [d.doc_id for d in docs] == ["de:0-0", "de:0-1", "de:1-0", "de:1-1", "de:1-2", "de:2-0", "de:2-1", "de:2-2"]
    assert ds.docs_count() == 8 and ds.docs_lang() == "de"
    assert docs[3].text == "Heute liegt das Tagebuch im Museum der Stadt."
    assert docs[3].context.startswith("Brenn führte") and docs[3].lang == "de"
    queries = list(ds.queries_iter())
    assert [q.query_id for q in queries] == [f"de:q{i}" for i in range(1, 6)]
    assert queries[0]._fields == ("query_id", "text") and queries[0].text.startswith("Welche Farbe")
    assert ds.queries_lang() == "de" and ir_datasets_ext.id_lang(queries[0].query_id) == "de"
    assert qrels("lareqa-demo/de/de") == {(f"de:{q}", d) for q, d in ANSWERS["de"].items()}


def test_cross_lingual_setting_skips_missing_translations():
    # q5 has no French version, so de->fr has 4 qrels, and fr->de only the 4 French questions
    assert qrels("lareqa-demo/de/fr") == {(f"de:{q}", d) for q, d in ANSWERS["fr"].items()}
    assert qrels("lareqa-demo/fr/de") == {(f"fr:{q}", ANSWERS["de"][q]) for q in ANSWERS["fr"]}
    assert ir_datasets.load("lareqa-demo/fr/de").docs_count() == N_DOCS["de"]


def test_multilingual_settings():
    ds = ir_datasets.load("lareqa-demo/en")
    assert ds.docs_count() == sum(N_DOCS.values()) == 24
    assert ds.docs_lang() is None
    expected = {(f"en:{q}", ANSWERS[y][q]) for y in ANSWERS for q in ANSWERS[y]}
    assert qrels("lareqa-demo/en") == expected
    assert len(expected) == 14  # 4 questions x 3 languages + q5 x 2
    everything = ir_datasets.load("lareqa-demo")
    assert sum(1 for _ in everything.queries_iter()) == 14
    assert len(qrels("lareqa-demo")) == 4 * 3 * 3 + 2 * 2  # q1..q4: 3 query x 3 doc langs; q5: en,de x en,de


def test_docstore_lookup():
    store = ir_datasets.load("lareqa-demo/fr").docs_store()
    assert store.get("fr:2-1").text == "Après la crue, les mineurs se mirent à la pêche."
    assert store.get("en:2-3").lang == "en"
    assert set(store.get_many(["de:1-2", "nope"])) == {"de:1-2"}
    with pytest.raises(KeyError):
        store.get("fr:9-9")


def test_pyterrier_topics_need_no_variant():
    import pyterrier as pt
    ds = pt.get_dataset("irds:lareqa-demo/fr/en")
    topics = ds.get_topics()
    assert list(topics.columns) == ["qid", "query"] and len(topics) == 4
    corpus = list(ds.get_corpus_iter(verbose=False))
    assert [d["lang"] for d in corpus] == ["en"] * 9 and corpus[0]["docno"] == "en:0-0"
    qr = ds.get_qrels()
    assert dict(zip(qr.qid, qr.docno))["fr:q4"] == "en:2-1"


def test_unknown_language_lists_valid_ones():
    with pytest.raises(ValueError, match=r"lareqa-demo has no language 'xx'; valid languages: en, de, fr"):
        ir_datasets.load("lareqa-demo/xx")
    with pytest.raises(ValueError, match="no language 'it'"):
        ir_datasets.load("lareqa-demo/en/it")
    with pytest.raises(ValueError, match="valid languages: ar, de, el, en"):
        ir_datasets.load("xquad-r/pt/en")


# a family like the demo but read from $PYTERRIER_HYBRID_DATA, as xquad-r and mlqa-r are
TINY = LareqaFamily("tiny-r", dict(DEMO.md5), "http://127.0.0.1:9/tiny-r/{lang}.json", "CC0")
register(TINY)


def _copy_fixture(tmp_path, monkeypatch, lang, mutate):
    folder = tmp_path / "data"
    shutil.copytree(DEMO_FILES, folder / "tiny-r")
    path = folder / "tiny-r" / f"{lang}.json"
    mutate(path)
    monkeypatch.setenv("PYTERRIER_HYBRID_DATA", str(folder))
    return path


def test_checksum_mismatch_names_file(tmp_path, monkeypatch):
    path = _copy_fixture(tmp_path, monkeypatch, "de", lambda p: p.write_bytes(p.read_bytes().replace(b"rot", b"blau")))
    with pytest.raises(LareqaDataError, match=rf"checksum mismatch for {path}.*b33b3e74214fd6724e918595ff14fc6d.*replace it"):
        list(ir_datasets.load("tiny-r/de/de").docs_iter())


def test_malformed_json_names_file(tmp_path, monkeypatch):
    path = _copy_fixture(tmp_path, monkeypatch, "en", lambda p: p.write_bytes(p.read_bytes()[:-40]))
    broken = LareqaFamily("tiny-r", {"en": hashlib.md5(path.read_bytes()).hexdigest()}, TINY.url, "CC0")
    with pytest.raises(LareqaDataError, match=rf"{path} is not a LAReQA file.*invalid json"):
        broken.load("en")


def test_missing_sentence_breaks_is_reported():
    raw = b'{"data": [{"paragraphs": [{"context": "A b.", "sentences": ["A b."], "qas": []}]}]}'
    with pytest.raises(LareqaDataError, match="paragraph 0 lacks 'sentence_breaks'"):
        ir_datasets_ext.parse_squad_sentences(raw, "en", "x.json")


def test_missing_local_file_says_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTERRIER_HYBRID_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"en.json does not exist.*must hold tiny-r/<lang>.json.*PYTERRIER_HYBRID_DATA"):
        TINY.load("en")


def test_download_through_ir_datasets_cache(tmp_path, monkeypatch):
    """With no local folder, files come over HTTP into ir_datasets' cache, md5-checked."""
    monkeypatch.delenv("PYTERRIER_HYBRID_DATA", raising=False)
    monkeypatch.setattr(ir_datasets.util, "home_path", lambda: tmp_path / "home")
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(DEMO_FILES.parent))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/lareqa-demo/{{lang}}.json"
        good = LareqaFamily("lareqa-demo", dict(TINY.md5), url, "CC0")
        assert len(good.load("fr").docs) == 7
        assert (tmp_path / "home" / "lareqa" / "lareqa-demo" / "fr.json").read_bytes() == (DEMO_FILES / "fr.json").read_bytes()
        bad = LareqaFamily("lareqa-demo", {"de": "0" * 32}, url, "CC0")
        with pytest.raises(LareqaDataError, match="checksum mismatch.*download was discarded"):
            bad.load("de")
        assert not (tmp_path / "home" / "lareqa" / "lareqa-demo" / "de.json").exists()
    finally:
        server.shutdown()


def test_double_import_and_reregister_do_not_raise():
    import importlib
    importlib.reload(ir_datasets_ext)
    register(TINY)
    code = "import pyterrier, ir_datasets_ext, ir_datasets; import pyterrier_hybrid; print('xquad-r/de/en' in ir_datasets.registry)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True"


def test_import_pyterrier_alone_registers():
    code = "import pyterrier as pt, ir_datasets, sys; print('mlqa-r/hi/zh' in ir_datasets.registry, 'ir_datasets_ext' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True True"
