"""nndoctor: why is my neural network's output always the same?

Importing this package loads NumPy only; torch and matplotlib load lazily where used.
"""

__version__ = "0.1.0"
