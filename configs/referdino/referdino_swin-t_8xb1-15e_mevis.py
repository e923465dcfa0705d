# ReferDINO, Swin-T, MeViS (paper J&F 48.0): no RefCOCO pretraining, 15 epochs, lr 1e-4,
# loss / matching weights cls/L1/GIoU/mask/dice/proj = 2/1/1/5/5/2 (official code), several
# sequences above a mean score of 0.2 are merged at test time (multi-object expressions).
_base_ = [
    '../_base_/models/referdino_swin-t.py', '../_base_/datasets/mevis.py',
    '../_base_/schedules/schedule_rvos_2e.py', '../_base_/default_runtime.py'
]
w_cls, w_l1, w_giou, w_mask, w_dice, w_proj = 2.0, 1.0, 1.0, 5.0, 5.0, 2.0
model = dict(
    bbox_head=dict(
        loss_cls=dict(loss_weight=w_cls), loss_bbox=dict(loss_weight=w_l1),
        loss_iou=dict(loss_weight=w_giou), loss_mask=dict(loss_weight=w_mask),
        loss_dice=dict(loss_weight=w_dice), loss_proj=dict(loss_weight=w_proj)),
    train_cfg=dict(
        assigner=dict(match_costs=[
            dict(type='FocalLossCost', weight=w_cls),
            dict(type='BBoxL1Cost', weight=w_l1, box_format='xywh'),
            dict(type='IoUCost', iou_mode='giou', weight=w_giou),
            dict(type='FocalLossCost', weight=w_mask, binary_input=True),
            dict(type='DiceCost', weight=w_dice, pred_act=True, eps=1.0),
            dict(type='ProjectionDiceCost', weight=w_proj),
        ])),
    test_cfg=dict(select='threshold', score_thr=0.2))
max_epochs = 15
train_cfg = dict(max_epochs=max_epochs)
optim_wrapper = dict(optimizer=dict(lr=1e-4))
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[10],
         gamma=0.1)
]
