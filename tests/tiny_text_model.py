"""A tiny random-weight causal language model, built from config and saved like a real one.

GPT-2 with two layers of width 32 over a byte-level vocabulary (every byte, no merges, one
end-of-text token), saved with `save_pretrained` so the `text_model` generator loads it through
the same offline `from_pretrained` path production uses. Nothing here touches the network.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

END = "<|endoftext|>"


def tiny_text_model(folder: Path) -> Path:
    """Save the model and its tokenizer into `folder`; returns it."""
    vocab = {char: i for i, char in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    vocab[END] = len(vocab)
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=END, bos_token=END)
    config = GPT2Config(
        vocab_size=len(vocab),
        n_positions=1024,
        n_embd=32,
        n_layer=2,
        n_head=2,
        bos_token_id=vocab[END],
        eos_token_id=vocab[END],
    )
    torch.manual_seed(0)  # the test's own weights; the generator never touches the global RNG
    GPT2LMHeadModel(config).save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder
