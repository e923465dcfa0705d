# mmdet's own Grounding DINO (Swin-T) REC config on RefCOCO/+/g (MDETR-style annotations,
# RefExpMetric), with mmrvos's confidence-aware query-pruning decoder mixed in through
# custom_imports. Only five things change:
#   * `custom_imports` registers mmrvos into mmdet's registries;
#   * runner_type = 'mmdet.RVOSRunner' (checkpoints are unpickled with weights_only=True);
#   * model.type = 'PrunedGroundingDINO' (mmdet's GroundingDINO hard-codes its decoder class;
#     the subclass builds PruningGroundingDinoDecoder and swaps GroundingDINOHead for
#     PrunedGroundingDINOHead, which accepts a different query count per decoder layer);
#   * model.decoder.drop_rate: fraction of queries dropped after every decoder layer
#     (900 -> 450 -> 225 -> 113 -> 57 -> 29 -> 15 at 0.5);
#   * model.language_model.type = 'EagerBertModel': mmdet's BertModel with eager attention
#     (same arguments and weights; some transformers releases, e.g. 4.41, build BERT with SDPA,
#     which rejects Grounding DINO's (bs, L, L) sub-sentence mask). import mmrvos leaves
#     mmdet's 'BertModel' as it is.
# Denoising queries cannot be combined with pruning: dn_cfg is removed (training then uses
# only the matching losses per decoder layer plus the encoder-proposal losses).
# Stock Grounding DINO checkpoints load unchanged (same parameters), e.g.
#   load_from = 'https://download.openmmlab.com/mmdetection/v3.0/grounding_dino/groundingdino_swint_ogc_mmdet-822d7e9d.pth'
_base_ = 'mmdet::grounding_dino/refcoco/grounding_dino_swin-t_pretrain_zeroshot_refexp.py'

custom_imports = dict(imports=['mmrvos'], allow_failed_imports=False)
runner_type = 'mmdet.RVOSRunner'

model = dict(
    type='PrunedGroundingDINO',
    language_model=dict(type='EagerBertModel'),
    decoder=dict(drop_rate=0.5, prune_mode='confidence'),
    dn_cfg=None,
    # the zero-shot REC base has no train_cfg; this is the assigner of mmdet's
    # grounding_dino_swin-t_finetune_16xb2_1x_coco.py, so the model can be fine-tuned too
    train_cfg=dict(
        _delete_=True,
        assigner=dict(
            type='HungarianAssigner',
            match_costs=[
                dict(type='BinaryFocalLossCost', weight=2.0),
                dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'),
                dict(type='IoUCost', iou_mode='giou', weight=2.0)
            ])))
