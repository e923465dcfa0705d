"""A Grounding DINO decoder layer with switchable sub-blocks and self-attention weights."""
from typing import Optional, Tuple, Union

from mmdet.models.layers.transformer.grounding_dino_layers import \
    GroundingDinoTransformerDecoderLayer
from torch import Tensor


class SwitchableGroundingDecoderLayer(GroundingDinoTransformerDecoderLayer):
    """mmdet's ``GroundingDinoTransformerDecoderLayer`` (self-attn -> text cross-attn ->
    deformable image cross-attn -> FFN, each followed by a norm), plus:

    * ``need_attn_weights=True`` also returns the head-averaged self-attention map, used by
      confidence-aware query pruning;
    * ``with_text_cross_attn`` / ``with_image_cross_attn`` switch sub-blocks off for the
      mask-decoder ablations of the paper (the modules stay built so checkpoints stay loadable).

    Args:
        with_text_cross_attn (bool): run the text cross-attention. Defaults to True.
        with_image_cross_attn (bool): run the deformable image cross-attention. Defaults to True.
        **kwargs: arguments of ``GroundingDinoTransformerDecoderLayer``.
    """

    def __init__(self, with_text_cross_attn: bool = True, with_image_cross_attn: bool = True,
                 **kwargs) -> None:
        self.with_text_cross_attn = with_text_cross_attn
        self.with_image_cross_attn = with_image_cross_attn
        super().__init__(**kwargs)

    def _self_attention(self, query: Tensor, query_pos: Optional[Tensor],
                        attn_mask: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
        """Self-attention of mmcv's ``MultiheadAttention`` that also returns its weights.

        Args:
            query (Tensor): (B, Q, C).
            query_pos (Tensor, optional): (B, Q, C).
            attn_mask (Tensor, optional): (Q, Q) or (B*heads, Q, Q) boolean mask.

        Returns:
            tuple: output (B, Q, C) with the residual, weights (B, Q, Q) averaged over heads
            (row i = attention that query i pays to every query).
        """
        block = self.self_attn
        q = query if query_pos is None else query + query_pos
        v = query
        if block.batch_first:
            q, v = q.transpose(0, 1), v.transpose(0, 1)
        out, weights = block.attn(q, q, v, attn_mask=attn_mask, need_weights=True,
                                  average_attn_weights=True)
        if block.batch_first:
            out = out.transpose(0, 1)
        return query + block.dropout_layer(block.proj_drop(out)), weights

    def forward(self,
                query: Tensor,
                key: Tensor = None,
                value: Tensor = None,
                query_pos: Tensor = None,
                key_pos: Tensor = None,
                self_attn_mask: Tensor = None,
                cross_attn_mask: Tensor = None,
                key_padding_mask: Tensor = None,
                memory_text: Tensor = None,
                text_attention_mask: Tensor = None,
                need_attn_weights: bool = False,
                **kwargs) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        """Run the layer.

        Args:
            query (Tensor): (B, Q, C) queries.
            value (Tensor): (B, sum_l H_l*W_l, C) flattened image memory.
            query_pos (Tensor): (B, Q, C) positional embedding of the queries.
            key_padding_mask (Tensor): (B, sum_l H_l*W_l) True on padding.
            memory_text (Tensor): (B, L, C) text features.
            text_attention_mask (Tensor): (B, L) True on padded tokens.
            need_attn_weights (bool): also return the (B, Q, Q) self-attention weights.
            **kwargs: ``reference_points`` (B, Q, levels, 2 or 4), ``spatial_shapes``,
                ``level_start_index`` for the deformable attention.

        Returns:
            Tensor: (B, Q, C), or ``(output, weights)`` when ``need_attn_weights``.
        """
        weights = None
        if need_attn_weights:
            query, weights = self._self_attention(query, query_pos, self_attn_mask)
        else:
            query = self.self_attn(query=query, key=query, value=query, query_pos=query_pos,
                                   key_pos=query_pos, attn_mask=self_attn_mask, **kwargs)
        query = self.norms[0](query)
        if self.with_text_cross_attn:
            query = self.cross_attn_text(query=query, query_pos=query_pos, key=memory_text,
                                         value=memory_text,
                                         key_padding_mask=text_attention_mask)
        query = self.norms[1](query)
        if self.with_image_cross_attn:
            query = self.cross_attn(query=query, key=key, value=value, query_pos=query_pos,
                                    key_pos=key_pos, attn_mask=cross_attn_mask,
                                    key_padding_mask=key_padding_mask, **kwargs)
        query = self.norms[2](query)
        query = self.ffn(query)
        query = self.norms[3](query)
        return (query, weights) if need_attn_weights else query
