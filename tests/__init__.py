"""npcnn's tests that need no TensorFlow, laid out like the package.

The tests of ``npcnn/X.py`` are in ``test_X.py``, those of ``npcnn/ops/`` and
``npcnn/datasets/`` in ``ops/`` and ``datasets/``; bad input, faults and fuzzing
sit beside the behaviour they guard. ``helpers.py`` holds what several modules
share; fixtures are in the ``conftest.py`` files (the real-data ones in the root's).
"""
