# G-DINO+DH baseline of the ReferDINO paper (Swin-T, Ref-YouTube-VOS; paper J&F 64.2):
# Grounding DINO + a CondInst *dynamic* mask head (controller on the query -> three 1x1
# dynamic convs of width 8 on F_seg reduced to 8 channels + relative coordinates to the
# predicted box centre) instead of the grounding-guided deformable mask decoder.
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
            _delete_=True, type='RVOSDynamicMaskHead', embed_dims=embed_dims,
            in_channels=embed_dims, reduced_channels=8, dynamic_channels=8,
            num_dynamic_layers=3, controller_layers=1, rel_coord=True)))
# as ReferDINO: start from the RefCOCO/+/g-pretrained model (load_from=...)
