"""Fake production lines with a known ground truth, for demos, tests and detection benchmarks.

The simulators read the plant YAML themselves and never import the service's packages.
"""

from simulators.faults import FAULT_KINDS, FaultParameterError, FaultSpec
from simulators.mes_pusher import MesPusher, RetryPolicy
from simulators.opcua_server import NAMESPACE_URI, OpcuaLineSimulator
from simulators.plant import (
    SimCharacteristic,
    SimInspection,
    SimPlant,
    derive_nominal,
    derive_sigma,
    load_plant,
)
from simulators.plant_run import Pace, run_plant
from simulators.production import Economics, Production
from simulators.scenario import PartReadings, Scenario, ValueGenerator
from simulators.sparkplug import SparkplugOptions
from simulators.vision_camera import VisionCamera
from simulators.vision_payload import build_payload

__all__ = [
    "FAULT_KINDS",
    "NAMESPACE_URI",
    "Economics",
    "FaultParameterError",
    "FaultSpec",
    "MesPusher",
    "OpcuaLineSimulator",
    "Pace",
    "PartReadings",
    "Production",
    "RetryPolicy",
    "Scenario",
    "SimCharacteristic",
    "SimInspection",
    "SimPlant",
    "SparkplugOptions",
    "ValueGenerator",
    "VisionCamera",
    "build_payload",
    "derive_nominal",
    "derive_sigma",
    "load_plant",
    "run_plant",
]
