"""Fake production lines with a known ground truth, for demos and end-to-end tests.

The simulators read the plant YAML themselves and never import the service's packages.
"""

from simulators.opcua_server import NAMESPACE_URI, OpcuaLineSimulator
from simulators.plant import (
    SimCharacteristic,
    SimInspection,
    SimPlant,
    derive_nominal,
    derive_sigma,
    load_plant,
)
from simulators.scenario import Scenario, ValueGenerator
from simulators.vision_camera import VisionCamera, build_payload

__all__ = [
    "NAMESPACE_URI",
    "OpcuaLineSimulator",
    "Scenario",
    "SimCharacteristic",
    "SimInspection",
    "SimPlant",
    "ValueGenerator",
    "VisionCamera",
    "build_payload",
    "derive_nominal",
    "derive_sigma",
    "load_plant",
]
