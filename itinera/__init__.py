"""Itinera: durable, governed orchestration of personalized journeys."""
