"""Example counts for the hostile-input properties.

A few hundred examples per property in the ordinary run; thousands under
``ZIGGEO_HYPOTHESIS_PROFILE=fuzz``. Registered under names of their own so that
loading one never changes the settings of other test files.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
}
settings.register_profile("ziggeo-default", max_examples=300, **_COMMON)  # type: ignore[arg-type]
settings.register_profile("ziggeo-fuzz", max_examples=10_000, **_COMMON)  # type: ignore[arg-type]

PROFILE = "ziggeo-" + os.environ.get("ZIGGEO_HYPOTHESIS_PROFILE", "default")
#: Decorate each property with this (``@HOSTILE``) to run it under the chosen profile.
HOSTILE = settings.get_profile(PROFILE)
