"""The scenario language: YAML in, a typed, frozen ``Scenario`` out, or every error at once."""

from fogsim.scenario.load import Problem, ScenarioError, load_scenario, scenario_from_data
from fogsim.scenario.models import Scenario

__all__ = ["Problem", "Scenario", "ScenarioError", "load_scenario", "scenario_from_data"]
