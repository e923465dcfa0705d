"""mmengine's Runner with every checkpoint it reads loaded through the safe schemes."""
from mmdet.registry import RUNNERS
from mmengine.runner import Runner

from .checkpoint import safe_checkpoint_loaders


@RUNNERS.register_module()
class RVOSRunner(Runner):
    """:class:`~mmengine.runner.Runner` whose checkpoint reads run inside
    :func:`~mmrvos.engine.checkpoint.safe_checkpoint_loaders`.

    Covered: ``load_from`` and ``resume`` (``load_checkpoint`` / ``resume``, also through
    ``load_or_resume``) and the model's ``init_weights`` at the start of ``train()``
    (``init_cfg=dict(type='Pretrained', checkpoint=...)``). Whatever the scheme (path, URL,
    ``torchvision://`` ...), the file is unpickled with ``weights_only=True``; a checkpoint
    holding any other pickled object raises
    :class:`~mmrvos.engine.checkpoint.UnsafeCheckpointError`.

    Configs select it with ``runner_type = 'mmdet.RVOSRunner'`` (set in
    ``configs/_base_/default_runtime.py``): the scope prefix lets mmengine's root ``RUNNERS``
    find it when no default scope is set yet, as in ``tools/train.py``.
    """

    def load_checkpoint(self, *args, **kwargs):
        with safe_checkpoint_loaders():
            return super().load_checkpoint(*args, **kwargs)

    def resume(self, *args, **kwargs):
        with safe_checkpoint_loaders():
            return super().resume(*args, **kwargs)

    def _init_model_weights(self) -> None:
        with safe_checkpoint_loaders():
            super()._init_model_weights()
