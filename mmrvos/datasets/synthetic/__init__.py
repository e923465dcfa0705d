"""Synthetic data: the deterministic toy RVOS benchmark generator (numpy + Pillow only),
written in the Ref-YouTube-VOS layout that :class:`RefYouTubeVOSDataset` reads."""
from .toy_generator import davis_palette, generate_video, make_toy_rvos

__all__ = ['davis_palette', 'generate_video', 'make_toy_rvos']
