"""Stand-ins with the shapes of the PsychoPy objects Studio reaches through dunders.

The liaison under test imports this module (tests put this folder on its PYTHONPATH), and
in-process tests import it too. Studio's calls, in liaison 1.0 wire form:

- Monitor Center: ``run psychopy.experiment.monitor:BasePhotometerDeviceBackend.__subclasses__``
- every compile: ``init useVersion currentExperiment.settings.params.__getitem__ "Use version"``
  then ``run useVersion.__setattr__ "val" ""``
"""

from __future__ import annotations


class PhotometerBackend:
    """Like BasePhotometerDeviceBackend: Studio lists the device backends by its subclasses."""


class SpectraScanBackend(PhotometerBackend):
    pass


class ColorCalBackend(PhotometerBackend):
    pass


class Param:
    """Like a PsychoPy experiment parameter: Studio sets its ``val``."""

    def __init__(self, val: str) -> None:
        self.val = val


class Settings:
    def __init__(self) -> None:
        # A plain dict keyed by labels with spaces, which no target segment can name.
        self.params = {"Use version": Param("2024.2.4"), "expName": Param("demo")}


class Experiment:
    """Like psychopy.experiment.Experiment: ``settings.params`` maps labels to Params."""

    def __init__(self) -> None:
        self.settings = Settings()
