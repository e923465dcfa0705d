"""A config's test pipeline applied to a user's video, chunk by chunk.

``tools/test.py`` feeds a dataset's clips through ``test_dataloader.dataset.pipeline``
(``ClipSample`` -> ``TransformBroadcaster`` of per-frame loading and resizing -> ``PackRVOSInputs``)
and the model's data preprocessor. Inference on a video the user gives runs the same steps:
:class:`VideoTestPipeline` is that pipeline without what needs a dataset (the clip sampler, which
takes every frame in order anyway, and annotation loading), and :class:`LazyVideoTensor` runs it,
then the data preprocessor, on one chunk of frames when the model asks for that chunk.
"""
import copy
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from mmcv.transforms import BaseTransform
from mmdet.structures import DetDataSample

from .video_reader import FrameFiles, FrameSource

# the test pipeline of the Ref-YouTube-VOS configs: used for a model built without a dataset
# config (e.g. configs/_base_/models/*.py)
DEFAULT_TEST_PIPELINE = [
    dict(type='ClipSample', test_mode=True),
    dict(
        type='TransformBroadcaster',
        share_random_params=True,
        transforms=[dict(type='LoadRVOSFrame'),
                    dict(type='ShortSideResize', scale=360)]),
    dict(type='PackRVOSInputs'),
]
BROADCASTERS = ('TransformBroadcaster', )
FRAME_LOADERS = ('LoadRVOSFrame', 'LoadImageFromFile')
RESIZES = ('Resize', 'ShortSideResize', 'ResizeShortestEdge', 'FixShapeResize', 'RandomResize',
           'RandomChoiceResize')
# dataset-only steps: the clip sampler (inference takes every frame in order) and annotations
DROPPED = ('ClipSample', 'LoadRVOSAnnotations', 'LoadAnnotations', 'LoadTrackAnnotations',
           'FilterClipWithoutTarget')
# frame metainfo that must be the same for every frame of a video (checked per chunk)
SHARED_META = ('ori_shape', 'img_shape', 'scale_factor', 'batch_input_shape', 'pad_shape')


def _type(step) -> str:
    """A transform's type without its scope (``mmdet.Resize`` -> ``Resize``)."""
    if not isinstance(step, dict):
        return type(step).__name__
    name = step.get('type', '')
    return name.rsplit('.', 1)[-1] if isinstance(name, str) else getattr(name, '__name__', '')


def config_test_pipeline(cfg) -> Optional[list]:
    """``test_dataloader.dataset.pipeline`` of a config (through dataset wrappers such as
    ``RepeatDataset`` / ``ConcatDataset``), or None when the config has none."""
    loader = cfg.get('test_dataloader') if cfg is not None else None
    dataset = loader.get('dataset') if isinstance(loader, dict) else None
    while isinstance(dataset, dict):
        if dataset.get('pipeline') is not None:
            return list(dataset['pipeline'])
        inner = dataset.get('dataset') or (dataset.get('datasets') or [None])[0]
        dataset = inner
    return None


class LoadInferenceFrame(BaseTransform):
    """The config's frame loader for a frame given as a file (``img_path``); a frame given as
    an array (``img``, decoded from a video file) is taken as it is, as mmdet's
    ``LoadImageFromNDArray`` does.

    Args:
        file_loader (dict): the loader of the config's test pipeline (``LoadRVOSFrame``).
    """

    def __init__(self, file_loader: dict) -> None:
        from mmdet.datasets.transforms import LoadImageFromNDArray
        from mmdet.registry import TRANSFORMS
        self.file_loader = TRANSFORMS.build(file_loader)
        self.array_loader = LoadImageFromNDArray(
            to_float32=bool(file_loader.get('to_float32', False)))

    def transform(self, results: dict) -> dict:
        if results.get('img') is not None:
            return self.array_loader(results)
        return self.file_loader(results)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(file_loader={self.file_loader!r})'


class VideoTestPipeline:
    """A config's test pipeline for frames the caller gives in order.

    From ``pipeline`` (a config's ``test_dataloader.dataset.pipeline``): ``ClipSample`` and
    annotation loading are dropped, the frame loader inside the ``TransformBroadcaster`` takes
    frame files or decoded frames (:class:`LoadInferenceFrame`), every other step is kept (the
    resize, ``PackRVOSInputs``). ``scale`` replaces the resize step by mmdet's
    ``Resize(scale, keep_ratio=True)`` (long side <= ``scale[0]``, short side <= ``scale[1]``).

    Args:
        pipeline (list[dict]): the config's test pipeline.
        scale (tuple[int, int], optional): working resolution (long, short) overriding the
            pipeline's resize.
        source (str): what to name in errors (the config file).

    Raises:
        ValueError: a pipeline without a ``TransformBroadcaster`` holding a frame loader.
    """

    def __init__(self,
                 pipeline: Sequence[dict],
                 scale: Optional[Tuple[int, int]] = None,
                 source: str = 'config') -> None:
        from mmdet.registry import TRANSFORMS
        from mmengine.dataset import Compose
        steps, found = [], False
        for step in copy.deepcopy(list(pipeline)):
            kind = _type(step)
            if kind in DROPPED:
                continue
            if kind in BROADCASTERS:
                step['transforms'] = self._frame_steps(step.get('transforms') or [], scale, source)
                found = True
            steps.append(step)
        if not found:
            raise ValueError(f'{source}: the test pipeline has no TransformBroadcaster of '
                             f'per-frame transforms ({", ".join(FRAME_LOADERS)}, resize); '
                             'inference needs one')
        self.source = source
        self.steps = steps
        self.transforms = Compose(
            [TRANSFORMS.build(s) if isinstance(s, dict) else s for s in steps])

    @staticmethod
    def _frame_steps(transforms: list, scale, source: str) -> list:
        steps, loader = [], None
        for step in transforms:
            kind = _type(step)
            if kind in DROPPED:
                continue
            if kind in FRAME_LOADERS and loader is None:
                loader = LoadInferenceFrame(step)
                steps.append(loader)
            elif kind in RESIZES and scale is not None:
                continue
            else:
                steps.append(step)
        if loader is None:
            raise ValueError(f'{source}: the test pipeline loads no frame (expected one of '
                             f'{", ".join(FRAME_LOADERS)} in its TransformBroadcaster)')
        if scale is not None:
            steps.insert(
                steps.index(loader) + 1,
                dict(type='Resize', scale=tuple(int(s) for s in scale), keep_ratio=True))
        return steps

    def __call__(self, frames: Sequence[dict], video_id: str, video_length: int) -> dict:
        """Run the pipeline on consecutive frames of one video.

        Args:
            frames (list[dict]): per frame, ``img_path`` (a file) or ``img`` ((H, W, 3) uint8
                BGR), ``frame_id`` (name) and ``frame_index`` (index in the video).
            video_id (str): the video's name (metainfo).
            video_length (int): T, frames of the whole video.

        Returns:
            dict: ``inputs`` (t, 3, H, W) uint8 and ``data_samples`` (``TrackDataSample`` of t
            frames), as the dataset gives a clip to the data preprocessor.
        """
        t = len(frames)
        results: Dict[str, list] = {k: [f.get(k) for f in frames] for k in frames[0]}
        results.update(
            video_id=[video_id] * t,
            ori_video_length=[video_length] * t,
            video_length=[video_length] * t)
        out = self.transforms(results)
        if out is None:
            raise ValueError(f'{self.source}: the test pipeline dropped frames '
                             f'{frames[0]["frame_id"]}..{frames[-1]["frame_id"]}')
        return out

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}({self.transforms!r})'


class LazyVideoTensor:
    """A (T, 3, H, W) preprocessed video that reads a chunk of frames, runs the test pipeline
    and the model's data preprocessor on it only when a slice is asked for, as
    :meth:`ReferDINO.predict_video` does chunk by chunk (only that chunk's frames are then in
    memory).

    It offers what ``predict_video`` takes as a video: ``len()``, ``shape`` and
    ``video[start:stop]`` (a real (t, 3, H, W) tensor on ``device``); and ``frame_samples``,
    the T ``DetDataSample`` s (metainfo of the first frame's pipeline output, with each frame's
    ``frame_id``, ``frame_index`` and ``img_path``). Every chunk's metainfo is checked against
    them.

    Args:
        source (FrameSource): the frames.
        pipeline (VideoTestPipeline): the test pipeline.
        data_preprocessor (nn.Module): the model's data preprocessor.
        device: where the chunks go.
        video_id (str, optional): name of the video in the metainfo.
    """

    def __init__(self,
                 source: FrameSource,
                 pipeline: VideoTestPipeline,
                 data_preprocessor,
                 device,
                 video_id: Optional[str] = None) -> None:
        self.source, self.pipeline = source, pipeline
        self.data_preprocessor = data_preprocessor
        self.device = torch.device(device)
        self.video_id = video_id or osp.basename(osp.normpath(source.description))
        self.reads: List[Tuple[int, int]] = []  # (start, stop) of every slice read
        # called with (start, stop) after each slice is read (e.g. a progress bar)
        self.on_read: Optional[Callable[[int, int], None]] = None
        inputs, samples = self._process(0, 1)
        template = samples[0].metainfo
        files = source.paths if isinstance(source, FrameFiles) else [None] * len(source)
        self.frame_samples = [
            DetDataSample(metainfo={
                **template, 'frame_id': name,
                'frame_index': i,
                'img_path': files[i]
            }) for i, name in enumerate(source.names)
        ]
        self.shape = torch.Size((len(source), *inputs.shape[1:]))

    def _frames(self, start: int, stop: int) -> List[dict]:
        names = self.source.names
        if isinstance(self.source, FrameFiles):
            return [
                dict(img_path=self.source.paths[i], frame_id=names[i], frame_index=i)
                for i in range(start, stop)
            ]
        return [
            dict(img=img, frame_id=names[i], frame_index=i)
            for i, img in zip(range(start, stop), self.source.iter_frames(start, stop))
        ]

    def _process(self, start: int, stop: int) -> Tuple[torch.Tensor, list]:
        packed = self.pipeline(self._frames(start, stop), self.video_id, len(self.source))
        data = self.data_preprocessor(
            dict(inputs=[packed['inputs']], data_samples=[packed['data_samples']]), False)
        return data['inputs'][0], data['data_samples'][0].video_data_samples

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index) -> torch.Tensor:
        if not isinstance(index, slice):
            raise TypeError(f'LazyVideoTensor takes slices of frames, got {index!r}')
        start, stop, step = index.indices(len(self))
        if step != 1 or stop <= start:
            raise IndexError(f'LazyVideoTensor takes non-empty contiguous slices, got {index}')
        self.reads.append((start, stop))
        inputs, samples = self._process(start, stop)
        for i, sample in zip(range(start, stop), samples):
            expected = self.frame_samples[i]
            for key in SHARED_META:
                got, want = sample.metainfo.get(key), expected.metainfo.get(key)
                if _norm(got) != _norm(want):
                    raise ValueError(
                        f'{self.source.description}: frame {self.source.names[i]} has {key} '
                        f'{got} after the test pipeline, the first frame {want}; all frames '
                        'of a video must come out of the pipeline with one shape')
        if self.on_read is not None:
            self.on_read(start, stop)
        return inputs.to(self.device)


def _norm(value):
    """Metainfo value comparable across frames (tuples, lists and arrays alike)."""
    try:
        return tuple(float(v) for v in value)
    except TypeError:
        return value


__all__ = [
    'VideoTestPipeline', 'LazyVideoTensor', 'LoadInferenceFrame', 'config_test_pipeline',
    'DEFAULT_TEST_PIPELINE'
]
