"""High-level APIs: ``init_rvos_model`` and ``inference_rvos``."""
from .inference import inference_rvos, init_rvos_model, load_video, prepare_video

__all__ = ['inference_rvos', 'init_rvos_model', 'load_video', 'prepare_video']
