"""``EagerBertModel`` (mmrvos's configs) is mmdet's ``BertModel`` with eager attention: same
state-dict keys, same outputs where mmdet's own class runs (reference: mmdet's class)."""
import pytest
import torch
from mmdet.models.language_models.bert import BertModel
from mmdet.registry import MODELS

import mmrvos  # noqa: F401  (registers EagerBertModel)
from rvos_test_utils import TINY_BERT

CFG = dict(
    name=TINY_BERT,
    pad_to_max=False,
    use_sub_sentence_represent=True,
    special_tokens_list=['[CLS]', '[SEP]', '.', '?'])
CAPTIONS = ['red circle. blue square.', 'the cat on the left']


def test_eager_bert_matches_mmdet_bert_with_sub_sentence_masks():
    eager = MODELS.build(dict(type='EagerBertModel', **CFG)).eval()
    stock = MODELS.build(dict(type='BertModel', **CFG)).eval()
    assert type(stock) is BertModel and isinstance(eager, BertModel)
    assert eager.language_backbone.body.model.config._attn_implementation == 'eager'
    assert eager.state_dict().keys() == stock.state_dict().keys()
    with torch.no_grad():
        for p in eager.parameters():
            p.add_(0.01 * torch.randn_like(p))  # not just the pretrained tiny weights
    stock.load_state_dict(eager.state_dict())
    with torch.no_grad():
        ours = eager(CAPTIONS)
        try:
            ref = stock(CAPTIONS)
        except ValueError as err:  # transformers releases whose SDPA path rejects 3-D masks
            pytest.skip(f"mmdet's BertModel cannot run (bs, L, L) masks here: {err}")
    assert ours['masks'].shape == ref['masks'].shape and ours['masks'].dim() == 3
    torch.testing.assert_close(ours['masks'], ref['masks'])
    torch.testing.assert_close(ours['text_token_mask'], ref['text_token_mask'])
    torch.testing.assert_close(ours['embedded'], ref['embedded'], atol=1e-5, rtol=1e-5)
