"""Engram's client for learners that run in their own process.

```python
import engram
run = engram.attach("frozenlake-q")        # finds the running Engram for the data dir
state = run.resume()                       # latest state or None
run.log({"success": s}, step=t)            # buffered; never blocks or raises
run.save(state_bytes, step=t, metrics={})  # durable when it returns
blob = engram.pack({"q": q_table, "episode": 7})  # numpy arrays and plain values, no pickle
items = engram.unpack(blob)
```

`engram.pack` / `engram.unpack` and the generator helpers are also in the
submodule `engram.pack` (``from engram.pack import unpack``).
"""

from .errors import EngramError
from .run import Run, SavedState, attach, default_data_dir
from .pack import (
    numpy_rng_state,
    pack,
    python_random_state,
    set_numpy_rng_state,
    set_python_random_state,
    unpack,
)

__all__ = [
    "EngramError",
    "Run",
    "SavedState",
    "attach",
    "default_data_dir",
    "numpy_rng_state",
    "pack",
    "python_random_state",
    "set_numpy_rng_state",
    "set_python_random_state",
    "unpack",
]
