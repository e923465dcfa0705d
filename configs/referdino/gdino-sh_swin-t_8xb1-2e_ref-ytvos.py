# G-DINO+SH baseline of the ReferDINO paper (Swin-T, Ref-YouTube-VOS; paper J&F 63.9):
# Grounding DINO + a *static* mask head (mask = MLP(query) . F_seg) instead of the
# grounding-guided deformable mask decoder.
# Temporal self-attention across frames = ReferDINO's TemporalEnhancer configured WITHOUT the
# memory tracker and WITH the cross-modal temporal decoder (its blocks start with temporal
# self-attention along T per query index); everything else is ReferDINO's Swin-T setting.
_base_ = [
    '../_base_/models/referdino_swin-t.py', '../_base_/datasets/ref_youtube_vos.py',
    '../_base_/schedules/schedule_rvos_2e.py', '../_base_/default_runtime.py'
]
embed_dims = 256
model = dict(
    temporal_enhancer=dict(tracker=None),
    bbox_head=dict(
        mask_decoder=dict(
            _delete_=True, type='StaticMaskHead', embed_dims=embed_dims,
            mask_channels=embed_dims, num_mlp_layers=3)))
# as ReferDINO: start from the RefCOCO/+/g-pretrained model (load_from=...)
