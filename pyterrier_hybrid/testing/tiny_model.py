"""A tiny random BERT with a character-level WordPiece vocabulary, built offline in a second.

For tests and for demos on machines with no model: its rankings are meaningless, but every
code path (tokenising, pooling, indexing, training) runs for real.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import BertConfig, BertModel, BertTokenizerFast

from ir_datasets_ext import DEMO


def _alphabet() -> list:
    chars = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,:;?!'-()")
    for f in (Path(DEMO.data_dir) / DEMO.name).glob("*.json"):
        for article in json.loads(f.read_text(encoding="utf-8"))["data"]:
            for p in article["paragraphs"]:
                chars.update(p["context"])
                for qa in p["qas"]:
                    chars.update(qa["question"])
    chars.discard(" ")
    return sorted(chars)


def make_tiny_model(path: str | Path, seed: int = 0, hidden: int = 32, dropout: float = 0.1) -> Path:
    """Save a 2-layer random BertModel and its tokenizer to ``path``; return ``path``.

    Args:
        path: the directory to write.
        seed: torch seed for the random weights.
        hidden: hidden size (the vector dimension).
        dropout: hidden and attention dropout (0 makes training deterministic across batch splits).
    """
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
                        intermediate_size=2 * hidden, max_position_embeddings=256,
                        hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    BertModel(config).save_pretrained(path)
    return path
