"""The onboarding demo: thousands of synthetic customers through a real journey, in seconds."""

from itinera.demo.customers import Customer, make_customers, timeline
from itinera.demo.driver import DEFAULT_DB, DemoReport, run_demo

__all__ = ["DEFAULT_DB", "Customer", "DemoReport", "make_customers", "run_demo", "timeline"]
