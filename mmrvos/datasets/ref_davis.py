"""Ref-DAVIS17, converted to the Ref-YouTube-VOS layout
(``tools/dataset_converters/davis_to_ytvos.py``)."""
import warnings
from typing import Optional, Sequence

from mmdet.registry import DATASETS

from .base_rvos import DatasetRepairWarning
from .ref_youtube_vos import RefYouTubeVOSDataset

NUM_ANNOTATORS = 4


@DATASETS.register_module()
class RefDAVISDataset(RefYouTubeVOSDataset):
    """Ref-DAVIS17 in the Ref-YouTube-VOS layout, with the 4 annotator expressions kept apart.

    Each object has four expressions: annotator 1 first-frame, annotator 1 full-video,
    annotator 2 first-frame, annotator 2 full-video; they are scored separately (DAVIS protocol)
    and the four J&F are averaged. A sample's ``annotator`` (0..3, in that order) is read from the
    expression's ``"annotator"`` key, which ``davis_to_ytvos.py`` writes. Files converted by the
    ReferFormer script lack it; their expressions are numbered ``4 * object_index + annotator``,
    so the fallback is ``int(exp_id) % 4`` (a :class:`DatasetRepairWarning` is emitted once per
    dataset when the fallback is used).

    Args:
        annotators (Sequence[int], optional): keep only these annotator indices.
        **kwargs: :class:`RefYouTubeVOSDataset` arguments.
    """

    METAINFO = dict(classes=('object', ), dataset_name='ref_davis')

    def __init__(self, *args, annotators: Optional[Sequence[int]] = None, **kwargs) -> None:
        self.annotators = None if annotators is None else tuple(int(a) for a in annotators)
        self._warned_fallback = False
        super().__init__(*args, **kwargs)

    def annotator_of(self, exp_id: str, exp: dict, video: dict) -> Optional[int]:
        if 'annotator' in exp:
            annotator = int(exp['annotator'])
        else:
            try:
                annotator = int(exp_id) % NUM_ANNOTATORS
            except ValueError:
                raise ValueError(f'{self.ann_file}: expression {exp_id!r} has no "annotator" '
                                 'and a non-integer id; cannot tell its annotator') from None
            if not self._warned_fallback:
                warnings.warn(
                    f'{self.ann_file}: expressions lack "annotator"; using int(exp_id) % 4 '
                    '(ReferFormer conversion order)', DatasetRepairWarning)
                self._warned_fallback = True
        if not 0 <= annotator < NUM_ANNOTATORS:
            raise ValueError(f'{self.ann_file}: expression {exp_id!r} annotator {annotator} '
                             'outside 0..3')
        return annotator

    def keep_expression(self, info: dict) -> bool:
        return super().keep_expression(info) and (self.annotators is None
                                                  or info["annotator"] in self.annotators)
