"""A tiny random BERT with a character-level WordPiece vocabulary, built offline in a second."""
import json
from pathlib import Path

import torch
from transformers import BertConfig, BertModel, BertTokenizerFast

FIXTURES = Path(__file__).parent / "fixtures"


def _alphabet():
    chars = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,:;?!'-()")
    for f in (FIXTURES / "tiny-r").glob("*.json"):
        for article in json.loads(f.read_text(encoding="utf-8"))["data"]:
            for p in article["paragraphs"]:
                chars.update(p["context"])
                for qa in p["qas"]:
                    chars.update(qa["question"])
    chars.discard(" ")
    return sorted(chars)


def make_tiny_model(path, seed=0, hidden=32):
    """Save a 2-layer random BertModel and its tokenizer to ``path``; return ``path``."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    chars = _alphabet()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars + ["##" + c for c in chars]
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    # transformers 5 takes the vocabulary itself; 4.x reads vocab_file
    tok = BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=False)
    if len(tok.get_vocab()) != len(vocab):
        tok = BertTokenizerFast(vocab_file=str(path / "vocab.txt"), do_lower_case=False)
    tok.save_pretrained(path)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=2 * hidden, max_position_embeddings=256)
    BertModel(config).save_pretrained(path)
    return path
