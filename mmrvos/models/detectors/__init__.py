from .referdino import ReferDINO

__all__ = ['ReferDINO']
