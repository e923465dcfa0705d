from .pixel_decoder import RVOSPixelDecoder

__all__ = ['RVOSPixelDecoder']
