"""Frozen RoBERTa (transformers) + feature resizer -> word and sentence features."""
import math
from typing import Dict, Sequence

import torch
import torch.nn as nn
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor


def sine_positions_1d(padding: Tensor, dims: int, temperature: float = 10000.) -> Tensor:
    """Normalised 1-D sine/cosine position embedding of the valid tokens.

    Args:
        padding (Tensor): (N, L) True on padded tokens. dims (int): C (even).

    Returns:
        Tensor: (N, L, C).
    """
    pos = (~padding).float().cumsum(1)
    pos = pos / (pos[:, -1:].clamp_min(1) + 1e-6) * 2 * math.pi
    dim_t = torch.arange(dims, dtype=torch.float32, device=padding.device)
    dim_t = temperature**(2 * (dim_t // 2) / dims)
    x = pos[..., None] / dim_t
    return torch.stack([x[..., 0::2].sin(), x[..., 1::2].cos()], -1).flatten(2)


@MODELS.register_module()
class RobertaTextEncoder(BaseModule):
    """RoBERTa text backbone of ReferFormer.

    ``transformers.RobertaModel`` (frozen and kept in eval mode when ``frozen``) encodes the
    sentences; a feature resizer (Linear + LayerNorm + dropout) maps the word features
    (``last_hidden_state``) and the sentence feature (``pooler_output``) to ``out_dims``.

    Args:
        name (str): model name or local directory (``from_pretrained``; offline tests use the
            tiny model of ``tools/make_tiny_roberta.py``).
        out_dims (int): C. max_tokens (int): truncation length. frozen (bool): freeze RoBERTa.
        dropout (float): resizer dropout.
    """

    def __init__(self,
                 name: str = 'roberta-base',
                 out_dims: int = 256,
                 max_tokens: int = 64,
                 frozen: bool = True,
                 dropout: float = 0.1,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        from transformers import RobertaModel, RobertaTokenizerFast
        self.tokenizer = RobertaTokenizerFast.from_pretrained(name)
        self.model = RobertaModel.from_pretrained(name)
        self.max_tokens = max_tokens
        self.frozen = frozen
        if frozen:
            self.model.requires_grad_(False)
        hidden = self.model.config.hidden_size
        self.resizer = nn.Sequential(
            nn.Linear(hidden, out_dims), nn.LayerNorm(out_dims, eps=1e-12), nn.Dropout(dropout))

    def init_weights(self) -> None:
        """Only the resizer is initialised; RoBERTa keeps its pretrained weights."""
        for m in self.resizer.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.frozen:
            self.model.eval()
        return self

    def forward(self, texts: Sequence[str]) -> Dict[str, Tensor]:
        """Encode N sentences.

        Returns:
            dict: ``words`` (N, L, C), ``padding`` (N, L) True on pads, ``sentence`` (N, C),
            ``pos`` (N, L, C) 1-D sine positions.
        """
        for text in texts:
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f'ReferFormer needs a non-empty referring expression, '
                                 f'got {text!r}')
        device = self.resizer[0].weight.device
        tok = self.tokenizer(
            list(texts),
            padding='longest',
            truncation=True,
            max_length=self.max_tokens,
            return_tensors='pt').to(device)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            out = self.model(input_ids=tok.input_ids, attention_mask=tok.attention_mask)
        padding = tok.attention_mask == 0
        words = self.resizer(out.last_hidden_state)
        return dict(
            words=words,
            padding=padding,
            sentence=self.resizer(out.pooler_output),
            pos=sine_positions_1d(padding, words.shape[-1]))
