# MPG-SAM 2 on Ref-DAVIS17 (paper: J&F 72.4 valid). The paper validates the Ref-YouTube-VOS
# model on Ref-DAVIS17 "without additional training" (the official repository's
# inference_davis.py is ReferFormer's, not adapted to MPG-SAM 2); here every annotator's
# expression is scored apart and J&F averaged over the four. Test a converted Ref-YouTube-VOS
# release with this config; the train split (same 5-frame recipe) is there for fine-tuning,
# which the paper does not do. Test chunks: none (whole video in one pass, as Ref-YouTube-VOS).
_base_ = [
    './_base_/mpg_sam2_beit3-l_sam2-hiera-l.py', '../../../configs/_base_/datasets/ref_davis.py',
    './_base_/schedule_mpg_sam2_6e.py', '../../../configs/_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmrvos', 'projects.MPG-SAM2.mpg_sam2'], allow_failed_imports=False)
train_pipeline = {{_base_.mpg_sam2_train_pipeline}}
test_pipeline = {{_base_.mpg_sam2_test_pipeline}}
train_dataloader = dict(batch_size=1, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
