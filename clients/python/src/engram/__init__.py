"""Engram's client for learners that run in their own process.

```python
import engram
run = engram.attach("frozenlake-q")        # finds the running Engram for the data dir
state = run.resume()                       # latest state or None
run.log({"success": s}, step=t)            # buffered; never blocks or raises
run.save(state_bytes, step=t, metrics={})  # durable when it returns
```
"""

from .client import EngramError, Run, SavedState, attach, default_data_dir

__all__ = ["EngramError", "Run", "SavedState", "attach", "default_data_dir"]
