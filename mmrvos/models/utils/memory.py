"""Give freed heap memory back to the operating system during long inference.

glibc's ``malloc`` raises its mmap threshold after a large block is freed, so the next chunks'
temporaries (backbone and encoder activations of a few frames) come from the heap, where
small long-lived allocations between them keep the freed pages from going back: the resident
memory of a long video then grows with the number of chunks though what is alive does not.
``malloc_trim(0)`` returns the free pages (at the top of the heap and, since glibc 2.8, inside
it). Elsewhere (no glibc) this is a no-op.
"""
import ctypes
import ctypes.util
from typing import Optional

_LIBC: Optional[ctypes.CDLL] = None
_LOADED = False


def trim_freed_memory() -> bool:
    """``malloc_trim(0)`` where the C library has it. Returns whether memory was released."""
    global _LIBC, _LOADED
    if not _LOADED:
        _LOADED = True
        try:
            libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
            _LIBC = libc if hasattr(libc, 'malloc_trim') else None
        except OSError:
            _LIBC = None
    if _LIBC is None:
        return False
    return bool(_LIBC.malloc_trim(0))


__all__ = ['trim_freed_memory']
