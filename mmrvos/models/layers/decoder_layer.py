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

    def __init__(self,
                 with_text_cross_attn: bool = True,
                 with_image_cross_attn: bool = True,
                 **kwargs) -> None:
        self.with_text_cross_attn = with_text_cross_attn
        self.with_image_cross_attn = with_image_cross_attn
        super().__init__(**kwargs)

    @staticmethod
    def _attention(block,
                   query: Tensor,
                   key: Tensor,
                   value: Tensor,
                   query_pos: Optional[Tensor],
                   key_pos: Optional[Tensor],
                   attn_mask: Optional[Tensor] = None,
                   key_padding_mask: Optional[Tensor] = None,
                   need_weights: bool = False) -> Tuple[Tensor, Optional[Tensor]]:
        """mmcv ``MultiheadAttention.forward`` (residual and dropout as there) with
        contiguous (len, B, C) inputs to PyTorch's attention: a strided input sends its
        in-projection through a batched matmul that copies the weight once per query under
        bf16 autocast. Optionally also returns the head-averaged weights.

        Args:
            block: an mmcv ``MultiheadAttention``.
            query (Tensor): (B, Q, C); key, value (Tensor): (B, K, C) (batch first).
            query_pos, key_pos (Tensor, optional): added to query / key. Unlike mmcv,
                ``key_pos`` never defaults to ``query_pos``: mmcv adds the query positions to
                the text keys whenever Q equals L (e.g. 15 pruned queries and 15 tokens), which
                the official decoder never does.
            attn_mask (Tensor, optional): (Q, K) or (B*heads, Q, K) boolean mask.
            key_padding_mask (Tensor, optional): (B, K) True on padding.

        Returns:
            tuple: output (B, Q, C) with the residual; weights (B, Q, K) or None.
        """
        identity = query
        same_qk = key is query and key_pos is query_pos
        if query_pos is not None:
            query = query + query_pos
        if key_pos is not None:
            key = query if same_qk else key + key_pos
        if block.batch_first:
            query = query.transpose(0, 1).contiguous()
            key = query if same_qk else key.transpose(0, 1).contiguous()
            value = value.transpose(0, 1).contiguous()
        out, weights = block.attn(
            query,
            key,
            value,
            attn_mask=attn_mask,
            key_padding_mask=key_padding_mask,
            need_weights=need_weights,
            average_attn_weights=True)
        if block.batch_first:
            out = out.transpose(0, 1)
        return identity + block.dropout_layer(block.proj_drop(out)), weights

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
        query, weights = self._attention(
            self.self_attn,
            query,
            query,
            query,
            query_pos,
            query_pos,
            attn_mask=self_attn_mask,
            need_weights=need_attn_weights)
        query = self.norms[0](query)
        if self.with_text_cross_attn:
            query, _ = self._attention(
                self.cross_attn_text,
                query,
                memory_text,
                memory_text,
                query_pos,
                None,
                key_padding_mask=text_attention_mask)
        query = self.norms[1](query)
        if self.with_image_cross_attn:
            query = self.cross_attn(
                query=query,
                key=key,
                value=value,
                query_pos=query_pos,
                key_pos=key_pos,
                attn_mask=cross_attn_mask,
                key_padding_mask=key_padding_mask,
                **kwargs)
        query = self.norms[2](query)
        query = self.ffn(query)
        query = self.norms[3](query)
        return (query, weights) if need_attn_weights else query
