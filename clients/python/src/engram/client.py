"""The client's public names, where earlier versions kept them (the client
now lives in rooms of one job: :mod:`engram.run`, :mod:`engram.transport`,
:mod:`engram.spool`, :mod:`engram.listener`, :mod:`engram.files`)."""

from .errors import EngramError
from .run import Run, SavedState, attach, default_data_dir

__all__ = ["EngramError", "Run", "SavedState", "attach", "default_data_dir"]
