"""Itinera: durable, governed orchestration of personalized customer and employee journeys."""

__version__ = "0.1.0"
